//! Opening a bank from a URL: drivers register their schemes, [`open`] picks one.

use std::future::Future;
use std::pin::Pin;
use std::sync::RwLock;

use url::Url;

use crate::{Bank, Databank, Error, Result, Schema};

/// The future a driver's open function returns.
pub type OpenFuture = Pin<Box<dyn Future<Output = Result<Box<dyn Databank>>> + Send>>;

/// What a driver crate registers: its name, its URL schemes and how to open it.
///
/// ```
/// use databank_core::registry::{Driver, OpenFuture};
/// use databank_core::{Schema, Error};
///
/// fn open_nothing(_url: url::Url, _schema: Schema) -> OpenFuture {
///     Box::pin(async { Err(Error::Unsupported("open")) })
/// }
/// databank_core::register(Driver { name: "nothing", schemes: &["nothing"], open: open_nothing });
/// assert!(databank_core::registry::schemes().contains(&"nothing".to_string()));
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Driver {
    /// The driver's name, for messages.
    pub name: &'static str,
    /// The URL schemes it handles, such as `["redis", "rediss"]`.
    pub schemes: &'static [&'static str],
    /// Connects to the backend the URL names.
    pub open: fn(Url, Schema) -> OpenFuture,
}

static DRIVERS: RwLock<Vec<Driver>> = RwLock::new(Vec::new());

/// Registers a driver; registering the same name again replaces it. Driver crates offer a
/// `register()` function that calls this.
pub fn register(driver: Driver) {
    let mut drivers = DRIVERS.write().unwrap_or_else(|poison| poison.into_inner());
    drivers.retain(|d| d.name != driver.name);
    drivers.push(driver);
}

/// Every registered scheme, sorted.
pub fn schemes() -> Vec<String> {
    let drivers = DRIVERS.read().unwrap_or_else(|poison| poison.into_inner());
    let mut schemes: Vec<String> = drivers
        .iter()
        .flat_map(|d| d.schemes.iter().map(|s| (*s).to_owned()))
        .collect();
    schemes.sort();
    schemes
}

/// Opens a bank from a URL with the driver registered for its scheme.
///
/// ```
/// # async fn demo() {
/// let err = databank_core::open("nosuch://x", databank_core::Schema::new()).await.unwrap_err();
/// assert!(matches!(err, databank_core::Error::UnknownScheme { .. }));
/// # }
/// ```
pub async fn open(url: &str, schema: Schema) -> Result<Bank> {
    let parsed = Url::parse(url)
        .map_err(|e| Error::InvalidInput(format!("bad databank URL {:?}: {e}", redact(url))))?;
    let driver = {
        let drivers = DRIVERS.read().unwrap_or_else(|poison| poison.into_inner());
        drivers
            .iter()
            .find(|d| d.schemes.contains(&parsed.scheme()))
            .copied()
    };
    let Some(driver) = driver else {
        return Err(Error::UnknownScheme {
            scheme: parsed.scheme().to_owned(),
            registered: schemes(),
        });
    };
    tracing::debug!(driver = driver.name, url = %redact(url), "opening databank");
    let bank = (driver.open)(parsed, schema).await?;
    Ok(Bank::from_box(bank))
}

/// The URL with any password replaced by `***`, for logs and messages.
///
/// ```
/// assert_eq!(databank_core::registry::redact("redis://u:secret@h/0"), "redis://u:***@h/0");
/// ```
pub fn redact(url: &str) -> String {
    match Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            // set_password only fails for URLs that cannot have one, which we just saw it has.
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        Ok(parsed) => parsed.to_string(),
        Err(_) => "<unparsable URL>".to_owned(),
    }
}
