//! Logs: `tracing` events on stderr, text or JSON lines (`TEREZE_LOG_FORMAT=json`), filtered by
//! `TEREZE_LOG` at start and changeable while running through the admin API.

use std::sync::{Mutex, OnceLock};

use tracing_subscriber::{reload, EnvFilter};

type Reload = Box<dyn Fn(EnvFilter) -> Result<(), reload::Error> + Send + Sync>;

static RELOAD: OnceLock<Reload> = OnceLock::new();
static CURRENT: Mutex<String> = Mutex::new(String::new());

/// Starts logging with `TEREZE_LOG`, else `configured`, else `info` (once per process; later
/// calls do nothing).
pub fn init(configured: Option<&str>) {
    let spec = std::env::var("TEREZE_LOG")
        .ok()
        .or_else(|| configured.map(str::to_owned))
        .unwrap_or_else(|| "info".into());
    let (filter, spec) = match EnvFilter::try_new(&spec) {
        Ok(f) => (f, spec),
        Err(_) => (EnvFilter::new("info"), "info".to_owned()),
    };
    let base = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let json = std::env::var("TEREZE_LOG_FORMAT").is_ok_and(|v| v == "json");
    let installed = if json {
        let b = base.json().with_filter_reloading();
        let h = b.reload_handle();
        let _ = RELOAD.set(Box::new(move |f| h.reload(f)));
        b.try_init().is_ok()
    } else {
        let b = base.with_filter_reloading();
        let h = b.reload_handle();
        let _ = RELOAD.set(Box::new(move |f| h.reload(f)));
        b.try_init().is_ok()
    };
    if installed {
        *CURRENT.lock().unwrap_or_else(|p| p.into_inner()) = spec;
    }
}

/// The filter in force (`info`, `tereze_node=debug,info`…).
pub(crate) fn filter() -> String {
    CURRENT.lock().unwrap_or_else(|p| p.into_inner()).clone()
}

/// Why a log filter was not put in force.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FilterError {
    #[error("{spec:?}: {source}")]
    Syntax {
        spec: String,
        #[source]
        source: tracing_subscriber::filter::ParseError,
    },
    #[error("logging is not running in this process")]
    NotRunning,
    #[error(transparent)]
    Reload(#[from] reload::Error),
}

/// Puts a new filter in force (EnvFilter syntax); refused if it does not parse.
pub(crate) fn set_filter(spec: &str) -> Result<(), FilterError> {
    let f = EnvFilter::try_new(spec).map_err(|source| FilterError::Syntax {
        spec: spec.to_owned(),
        source,
    })?;
    let reload = RELOAD.get().ok_or(FilterError::NotRunning)?;
    reload(f)?;
    *CURRENT.lock().unwrap_or_else(|p| p.into_inner()) = spec.to_owned();
    Ok(())
}
