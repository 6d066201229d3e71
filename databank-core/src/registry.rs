//! Opening a bank from a URL: drivers register their schemes, [`open`] picks one.

use std::future::Future;
use std::pin::Pin;
use std::sync::RwLock;

use url::Url;

use crate::driver::Driver;
use crate::{Bank, Error, Result, Schema};

/// The future a driver's open function returns.
pub type OpenFuture = Pin<Box<dyn Future<Output = Result<Box<dyn Driver>>> + Send>>;

/// What a driver crate registers: its name, its URL schemes and how to open it.
///
/// ```
/// use databank_core::driver::{register, OpenFuture, Registration, Url};
/// use databank_core::{Error, Schema};
///
/// fn open_nothing(_url: Url, _schema: Schema) -> OpenFuture {
///     Box::pin(async { Err(Error::InvalidInput("nothing opens".into())) })
/// }
/// let nothing = Registration { name: "nothing", schemes: &["nothing"], open: open_nothing };
/// register(nothing)?;
/// register(nothing)?; // the same driver again: no change
/// assert!(databank_core::schemes().contains(&"nothing".to_string()));
///
/// // Another driver may not take a scheme that is taken, nor one that no URL can carry.
/// let thief = Registration { name: "thief", schemes: &["nothing"], open: open_nothing };
/// assert!(register(thief).is_err());
/// let upper = Registration { name: "upper", schemes: &["Upper"], open: open_nothing };
/// assert!(register(upper).is_err());
/// # Ok::<(), Error>(())
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Registration {
    /// The driver's name, for messages.
    pub name: &'static str,
    /// The URL schemes it handles, such as `["redis", "rediss"]`.
    pub schemes: &'static [&'static str],
    /// Connects to the backend the URL names.
    pub open: fn(Url, Schema) -> OpenFuture,
}

static DRIVERS: RwLock<Vec<Registration>> = RwLock::new(Vec::new());

/// Registers a driver for its URL schemes. Registering the same driver (by name) again replaces
/// it. Fails with `InvalidInput` when a scheme is not a lower-case URL scheme (URL parsing
/// lower-cases schemes, so `Redis` could never be opened) or another driver holds it already.
/// Driver crates offer a `register()` that calls this.
pub fn register(driver: Registration) -> Result<()> {
    for scheme in driver.schemes {
        let valid = scheme.starts_with(|c: char| c.is_ascii_lowercase())
            && scheme
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "+-.".contains(c));
        if !valid {
            return Err(Error::InvalidInput(format!(
                "driver {:?}: scheme {scheme:?} must be lower-case letters, digits, '+', '-' or '.', starting with a letter",
                driver.name
            )));
        }
    }
    let mut drivers = DRIVERS.write().unwrap_or_else(|poison| poison.into_inner());
    if let Some(holder) = drivers
        .iter()
        .find(|d| d.name != driver.name && d.schemes.iter().any(|s| driver.schemes.contains(s)))
    {
        return Err(Error::InvalidInput(format!(
            "driver {:?} cannot register schemes {:?}: driver {:?} holds {:?}",
            driver.name, driver.schemes, holder.name, holder.schemes
        )));
    }
    drivers.retain(|d| d.name != driver.name);
    drivers.push(driver);
    Ok(())
}

/// Every registered scheme, sorted.
pub fn schemes() -> Vec<String> {
    let drivers = DRIVERS.read().unwrap_or_else(|poison| poison.into_inner());
    let mut schemes: Vec<String> = drivers
        .iter()
        .flat_map(|d| d.schemes.iter().map(|s| (*s).to_owned()))
        .collect();
    schemes.sort();
    schemes.dedup();
    schemes
}

/// Opens a bank from a URL with the driver registered for its scheme.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
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
/// assert_eq!(databank_core::redact("redis://u:secret@h/0"), "redis://u:***@h/0");
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
