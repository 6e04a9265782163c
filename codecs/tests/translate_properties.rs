//! Property test: any Kazakh export declaration within the form's rules survives
//! KZ → EAEU → X → EAEU → KZ with every value intact, for X each other member state's form
//! (Russia, Armenia, Belarus, Kyrgyzstan: their own names, code lists, separators and zones).

use proptest::prelude::*;
use tereze_codecs::c14n::{self, C14nOptions, NodeSet};
use tereze_codecs::translate::Catalog;
use tereze_codecs::xml::{self, Document};
use tereze_reference_data::Directories;

fn grouped(int: u64) -> String {
    let s = int.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(' ');
        }
        out.push(c);
    }
    out
}

/// `value` with `scale` decimals in the Kazakh form: space-grouped, decimal comma.
fn kz_decimal(value: u64, scale: u32) -> String {
    let p = 10u64.pow(scale);
    format!(
        "{},{:0width$}",
        grouped(value / p),
        value % p,
        width = scale as usize
    )
}

#[derive(Debug, Clone)]
struct Item {
    hs: u64,
    mass_grams: u64,
    price_cents: u64,
    unit: &'static str,
}

fn item() -> impl Strategy<Value = Item> {
    (
        1_000_000_000u64..9_999_999_999,
        1u64..10_000_000_000,
        1u64..100_000_000_000,
    )
        .prop_map(|(hs, mass_grams, price_cents)| Item {
            hs,
            mass_grams,
            price_cents,
            unit: "кг",
        })
}

fn declaration(
    items: &[Item],
    day: u32,
    hour: u32,
    currency: &str,
    consignee_country: &str,
    transport: &str,
) -> String {
    let mut goods = String::new();
    for (i, it) in items.iter().enumerate() {
        goods.push_str(&format!(
            "<Товар номер=\"{}\"><КодТНВЭД>{}</КодТНВЭД><Описание>Товар № {} &amp; «тест»</Описание><Вес ед=\"{}\">{}</Вес><Цена валюта=\"{currency}\">{}</Цена></Товар>",
            i + 1,
            it.hs,
            i + 1,
            it.unit,
            kz_decimal(it.mass_grams, 3),
            kz_decimal(it.price_cents, 2)
        ));
    }
    let total: u64 = items.iter().map(|i| i.price_cents).sum();
    format!(
        concat!(
            "<ЭкспортнаяДекларация xmlns=\"urn:kz:kgd:export-declaration:1\">",
            "<ИдентификаторДокумента>0b9e7c52-1f0a-4c55-8a3e-5d2c9f1b7e44</ИдентификаторДокумента>",
            "<ДатаВремя>{day:02}.03.2026 {hour:02}:05</ДатаВремя>",
            "<Декларант><Страна>398</Страна><БИН>990140000126</БИН><Наименование>ТОО «Тест»</Наименование></Декларант>",
            "<Получатель><Страна>{cc}</Страна><НомерНалогоплательщика>{tax}</НомерНалогоплательщика><Наименование>ООО «Тест»</Наименование></Получатель>",
            "<Процедура>ЭК10</Процедура><СтранаОтправления>398</СтранаОтправления><СтранаНазначения>{cc}</СтранаНазначения>",
            "<СуммаСчета валюта=\"{cur}\">{total}</СуммаСчета>",
            "<Товары>{goods}</Товары>",
            "<Транспорт><Вид>{tr}</Вид></Транспорт>",
            "<Подписант><Имя>Асель</Имя><Фамилия>Серікқызы</Фамилия></Подписант>",
            "</ЭкспортнаяДекларация>"
        ),
        day = day,
        hour = hour,
        cc = consignee_country,
        // A valid number of the consignee's state (check digits where it has them).
        tax = match consignee_country {
            "643" => "7700000009",
            "112" => "100325912",
            "051" => "02500012",
            "417" => "01234567890123",
            _ => "91110000100000000X",
        },
        cur = currency,
        total = kz_decimal(total, 2),
        goods = goods,
        tr = transport
    )
}

/// Every member state's export declaration form but Kazakhstan's own.
const OTHER_FORMS: [&str; 4] = [
    "ru.export-declaration",
    "am.export-declaration",
    "by.export-declaration",
    "kg.export-declaration",
];

fn canonical(doc: &Document) -> Vec<u8> {
    c14n::canonicalize(doc, NodeSet::document(), &C14nOptions::exclusive())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn kz_declarations_survive_the_round_trip_through_every_member_form(
        items in prop::collection::vec(item(), 1..8),
        day in 1u32..29,
        hour in 0u32..24,
        currency in prop::sample::select(vec!["840", "978", "398", "643", "156"]),
        consignee in prop::sample::select(vec!["643", "112", "051", "417", "156", "860"]),
        transport in prop::sample::select(vec!["ЖД", "АВТО", "МОР", "АВИА"]),
    ) {
        let catalog = Catalog::builtin().expect("mappings");
        let all_dirs = Directories::builtin();
        let dirs = all_dirs.today();
        let kz = declaration(&items, day, hour, currency, consignee, transport);
        let kz_doc = xml::parse(kz.as_bytes()).expect("generated document parses");
        let eaeu = catalog.translate(&dirs, "kz.export-declaration", "eaeu", &kz_doc).expect("KZ → EAEU");
        // Through each form in turn, each leg starting from the previous leg's EAEU document.
        let mut current = eaeu[0].document.clone();
        for form in OTHER_FORMS {
            let national = catalog
                .translate(&dirs, "eaeu.export-declaration", form, &current)
                .unwrap_or_else(|e| panic!("EAEU → {form}: {e}"));
            let wire = national[0].document.to_xml();
            current = catalog
                .translate(&dirs, form, "eaeu", &xml::parse(wire.as_bytes()).expect("parses"))
                .unwrap_or_else(|e| panic!("{form} → EAEU: {e}\n{wire}"))
                .remove(0)
                .document;
            prop_assert_eq!(canonical(&current), canonical(&eaeu[0].document), "through {}", form);
        }
        let kz_again = catalog
            .translate(&dirs, "eaeu.export-declaration", "kz.export-declaration", &current)
            .expect("EAEU → KZ");
        // The Kazakh form comes back with the same values (our writer's layout aside).
        let original = catalog.translate(&dirs, "kz.export-declaration", "kz.export-declaration", &kz_doc).expect("KZ → KZ");
        prop_assert_eq!(canonical(&kz_again[0].document), canonical(&original[0].document));
    }
}
