#!/usr/bin/env python3
"""Regenerates countries.toml (P.CLS.019) and currencies.toml (P.CLS.022) from Debian's
iso-codes package and its gettext translations.

    apt-get install -y iso-codes gettext   # gettext only for msgunfmt, if you want to look
    python3 reference-data/data/tools/gen_iso.py            # writes both files
    python3 reference-data/data/tools/gen_iso.py --check    # exits 1 if a file would change

Codes and English names: /usr/share/iso-codes/json/iso_3166-1.json and iso_4217.json.
Russian and Kazakh names: /usr/share/locale/{ru,kk}/LC_MESSAGES/iso_3166-1.mo and
iso_4217.mo (there is no Kazakh catalogue for ISO 4217, so new currencies have no kk name).

The entries written by hand before this script existed (PINNED_*) keep their names exactly;
RU_FIXES supplies Russian names the package lacks or gets wrong; KK_DROP lists Kazakh
translations that are wrong and are left out (only ru and en are required).
"""

import gettext
import json
import subprocess
import sys
from pathlib import Path

ISO = Path("/usr/share/iso-codes/json")
LOCALE = Path("/usr/share/locale")
OUT = Path(__file__).resolve().parent.parent / "directories"

PLACEHOLDER = (
    "The id follows the pattern of EEC classifier identifiers but is a placeholder until the "
    "Commission's register of the unified system of normative reference information is loaded "
    "(issue 7)."
)

# Entries of countries.toml as first written by hand: code -> (ru, kk, en).
PINNED_COUNTRIES = {
    "AM": ("Армения", "Армения", "Armenia"),
    "BY": ("Беларусь", "Беларусь", "Belarus"),
    "KZ": ("Казахстан", "Қазақстан", "Kazakhstan"),
    "KG": ("Киргизия", "Қырғызстан", "Kyrgyzstan"),
    "RU": ("Россия", "Ресей", "Russia"),
    "CN": ("Китай", "Қытай", "China"),
    "UZ": ("Узбекистан", "Өзбекстан", "Uzbekistan"),
    "TJ": ("Таджикистан", "Тәжікстан", "Tajikistan"),
    "TM": ("Туркменистан", "Түрікменстан", "Turkmenistan"),
    "AZ": ("Азербайджан", "Әзербайжан", "Azerbaijan"),
    "GE": ("Грузия", "Грузия", "Georgia"),
    "UA": ("Украина", "Украина", "Ukraine"),
    "MN": ("Монголия", "Моңғолия", "Mongolia"),
    "TR": ("Турция", "Түркия", "Türkiye"),
    "IR": ("Иран", "Иран", "Iran"),
    "IN": ("Индия", "Үндістан", "India"),
    "AE": ("Объединённые Арабские Эмираты", "Біріккен Араб Әмірліктері", "United Arab Emirates"),
    "DE": ("Германия", "Германия", "Germany"),
    "US": ("Соединённые Штаты", "Америка Құрама Штаттары", "United States"),
    "VN": ("Вьетнам", "Вьетнам", "Viet Nam"),
}

# Kazakh translations in the package that are wrong; the entry is written without kk.
KK_DROP = {
    "TF": "translated as 'French Northern Territories' (Солтүстік)",
    "YT": "translated as 'Мариотт'",
}

# Entries of currencies.toml as first written by hand: code -> (ru, kk, en).
PINNED_CURRENCIES = {
    "KZT": ("Казахстанский тенге", "Қазақстан теңгесі", "Kazakhstani tenge"),
    "RUB": ("Российский рубль", "Ресей рублі", "Russian ruble"),
    "BYN": ("Белорусский рубль", "Беларусь рублі", "Belarusian ruble"),
    "AMD": ("Армянский драм", "Армян драмы", "Armenian dram"),
    "KGS": ("Киргизский сом", "Қырғыз сомы", "Kyrgyz som"),
    "USD": ("Доллар США", "АҚШ доллары", "US dollar"),
    "EUR": ("Евро", "Еуро", "Euro"),
    "CNY": ("Китайский юань", "Қытай юані", "Chinese yuan"),
    "UZS": ("Узбекский сум", "Өзбек сомы", "Uzbek sum"),
    "TRY": ("Турецкая лира", "Түрік лирасы", "Turkish lira"),
    "AED": ("Дирхам ОАЭ", "БАӘ дирхамы", "UAE dirham"),
    "GBP": ("Фунт стерлингов", "Фунт стерлинг", "Pound sterling"),
    "CHF": ("Швейцарский франк", "Швейцария франкі", "Swiss franc"),
    "JPY": ("Иена", "Иена", "Yen"),
}

# Russian currency names the package's ru catalogue lacks (or gets wrong: GEL).
RU_FIXES = {
    "AZN": "Азербайджанский манат",
    "BOV": "Мвдол (Боливия)",
    "CHE": "WIR-евро",
    "CHW": "WIR-франк",
    "CLF": "Единица развития (Чили)",
    "COU": "Единица реальной стоимости (Колумбия)",
    "GEL": "Лари",
    "GNF": "Гвинейский франк",
    "KMF": "Франк Комор",
    "LAK": "Кип",
    "MXV": "Мексиканская инвестиционная единица (UDI)",
    "USN": "Доллар США (следующий день)",
    "UYI": "Уругвайское песо в индексированных единицах (UI)",
    "UYW": "Единица номинальной заработной платы (Уругвай)",
    "VED": "Боливар соберано (цифровой)",
    "VES": "Боливар соберано",
}

# Codes the package still lists that ISO 4217 has withdrawn: kept, ending on their last day
# (a document of that day may still use them; one of the next day may not).
WITHDRAWN = {
    # Croatia adopted the euro on 2023-01-01; ISO 4217 withdrew the kuna.
    "HRK": "2022-12-31",
}


def catalogue(lang, domain):
    path = LOCALE / lang / "LC_MESSAGES" / f"{domain}.mo"
    if not path.exists():
        return None
    with open(path, "rb") as f:
        return gettext.GNUTranslations(f)


def cyrillic(s):
    return any("\u0400" <= ch <= "\u04ff" for ch in s)


def translate(cat, *msgids):
    """The first translation of msgids that is in Cyrillic, else None."""
    if cat is None:
        return None
    for m in msgids:
        if m:
            t = cat.gettext(m)
            if t != m and cyrillic(t):
                return t
    return None


def package_version():
    try:
        out = subprocess.run(
            ["dpkg-query", "-W", "-f=${Version}", "iso-codes"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        return out or "unknown"
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def q(s):
    return json.dumps(s, ensure_ascii=False)


def names(ru, kk, en):
    parts = [f"ru = {q(ru)}"]
    if kk:
        parts.append(f"kk = {q(kk)}")
    parts.append(f"en = {q(en)}")
    return "{ " + ", ".join(parts) + " }"


def entry(code, ru, kk, en, columns):
    """`columns`: (state, national code) pairs in the order written."""
    national = ", ".join(f"{state} = [{q(c)}]" for state, c in columns)
    return (
        "[[entry]]\n"
        f"code = {q(code)}\n"
        f"names = {names(ru, kk, en)}\n"
        f"national = {{ {national} }}\n"
    )


def countries(version):
    data = json.loads((ISO / "iso_3166-1.json").read_text(encoding="utf-8"))["3166-1"]
    ru = catalogue("ru", "iso_3166-1")
    kk = catalogue("kk", "iso_3166-1")
    seen_numeric = set()
    out, no_kk = [], []
    for c in sorted(data, key=lambda c: c["alpha_2"]):
        a2, num = c["alpha_2"], c["numeric"]
        assert len(num) == 3 and num.isdigit(), c
        assert num not in seen_numeric, c
        seen_numeric.add(num)
        if a2 in PINNED_COUNTRIES:
            r, k, e = PINNED_COUNTRIES[a2]
        else:
            ids = (c["name"], c.get("common_name"), c.get("official_name"))
            r = translate(ru, *ids)
            if r is None:
                sys.exit(f"{a2}: no Russian name in the package; add one to the script")
            k = None if a2 in KK_DROP else translate(kk, *ids)
            e = c["name"]
        if not k:
            no_kk.append(a2)
        a3 = c["alpha_3"]
        # KZ, KG: numeric; RU, BY and the partner VN: alpha-2; AM: alpha-3 (data/SOURCES.md).
        cols = [("KZ", num), ("RU", a2), ("AM", a3), ("BY", a2), ("KG", num), ("VN", a2)]
        out.append(entry(a2, r, k, e, cols))
    missing = set(PINNED_COUNTRIES) - {c["alpha_2"] for c in data}
    assert not missing, missing
    header = (
        'id = "P.CLS.019"\n'
        'name = "Classifier of the countries of the world"\n'
        f"source = {q(f'Union codes: ISO 3166-1 alpha-2. KZ and KG columns: ISO 3166-1 numeric, as Kazakhstan' + chr(39) + f's and Kyrgyzstan' + chr(39) + f's national forms use. RU and BY columns: alpha-2. AM column: alpha-3. VN column (the partner state Viet Nam): alpha-2, as the IPPC ePhyto harmonised terms require. Codes and English short names: Debian package iso-codes {version} (iso_3166-1.json); Russian and Kazakh names: its ru and kk translations, except the 20 entries first written by hand (data/SOURCES.md; regenerate with data/tools/gen_iso.py). ' + PLACEHOLDER)}\n"
    )
    return header + "".join("\n" + e for e in out), len(out), no_kk


def currencies(version):
    data = json.loads((ISO / "iso_4217.json").read_text(encoding="utf-8"))["4217"]
    ru = catalogue("ru", "iso_4217")
    kk = catalogue("kk", "iso_4217")
    seen_numeric = set()
    out, fixed = [], []
    for c in sorted(data, key=lambda c: c["alpha_3"]):
        a3, num = c["alpha_3"], c["numeric"]
        num = num.zfill(3)
        assert len(num) == 3 and num.isdigit(), c
        assert num not in seen_numeric, c
        seen_numeric.add(num)
        if a3 in PINNED_CURRENCIES:
            r, k, e = PINNED_CURRENCIES[a3]
        else:
            if a3 in RU_FIXES:
                r = RU_FIXES[a3]
                fixed.append(a3)
            else:
                r = translate(ru, c["name"])
                if r is None:
                    sys.exit(f"{a3}: no Russian name in the package; add one to RU_FIXES")
            k = translate(kk, c["name"])
            e = c["name"]
        # KZ, BY, KG: numeric; RU, AM and the partner VN: alphabetic (data/SOURCES.md).
        cols = [("KZ", num), ("RU", a3), ("AM", a3), ("BY", num), ("KG", num), ("VN", a3)]
        text = entry(a3, r, k, e, cols)
        if a3 in WITHDRAWN:
            text += f"valid_to = {q(WITHDRAWN[a3])}\n"
        out.append(text)
    missing = set(PINNED_CURRENCIES) - {c["alpha_3"] for c in data}
    assert not missing, missing
    header = (
        'id = "P.CLS.022"\n'
        'name = "Classifier of currencies"\n'
        f"source = {q(f'Union codes: ISO 4217 alphabetic. KZ, BY and KG columns: ISO 4217 numeric. RU, AM and VN (the partner state Viet Nam) columns: alphabetic. Codes and English names: Debian package iso-codes {version} (iso_4217.json; withdrawn HRK ends on 2022-12-31); Russian names: its ru translation, some supplied by hand; Kazakh names only on the 14 entries first written by hand (data/SOURCES.md; regenerate with data/tools/gen_iso.py). ' + PLACEHOLDER)}\n"
    )
    return header + "".join("\n" + e for e in out), len(out), fixed


def main():
    check = "--check" in sys.argv[1:]
    version = package_version()
    c_text, c_n, no_kk = countries(version)
    m_text, m_n, fixed = currencies(version)
    changed = False
    for name, text in (("countries.toml", c_text), ("currencies.toml", m_text)):
        path = OUT / name
        old = path.read_text(encoding="utf-8") if path.exists() else None
        if old != text:
            changed = True
            if not check:
                path.write_text(text, encoding="utf-8")
    print(f"iso-codes {version}")
    print(f"countries.toml: {c_n} entries; without a kk name: {len(no_kk)} {no_kk}")
    print(f"currencies.toml: {m_n} entries; Russian names supplied by hand: {len(fixed)} {fixed}")
    if check and changed:
        print("a file would change")
        sys.exit(1)


if __name__ == "__main__":
    main()
