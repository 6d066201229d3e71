//! Patches: set and remove some top-level keys of an object record, and set or keep its
//! expiry, in one atomic step with no read before it.

use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::time::Duration;

use chrono::Utc;
use serde_json::{Map, Value};

use crate::{validate, Bank, Error, Expiry, Result, Revision};

/// What a patch does with the record's expiry.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PatchExpiry {
    /// Keep the record's expiry (a record the patch creates never expires).
    #[default]
    Keep,
    /// Set it to this instant (`None`: never).
    Set(Expiry),
}

impl PatchExpiry {
    /// The expiry the patched record gets, given the one it has (`None` for a record the patch
    /// creates).
    ///
    /// ```
    /// use databank_core::driver::PatchExpiry;
    /// let at = Some(chrono::Utc::now());
    /// assert_eq!(PatchExpiry::Keep.resolve(at), at);
    /// assert_eq!(PatchExpiry::Set(None).resolve(at), None);
    /// ```
    pub fn resolve(self, current: Expiry) -> Expiry {
        match self {
            PatchExpiry::Keep => current,
            PatchExpiry::Set(at) => at,
        }
    }
}

/// One patch, as [`Driver::patch`](crate::driver::Driver::patch) receives it from
/// [`Bank::patch`], which has checked the type name, the id, each value (at most
/// [`MAX_DEPTH`](validate::MAX_DEPTH) minus one levels deep, since it sits inside the record),
/// and that no key is both set and removed.
///
/// The record must be a JSON object (`WrongType` otherwise). The patched record obeys the same
/// limits as any value: a patch whose result would pass
/// [`MAX_VALUE_BYTES`](validate::MAX_VALUE_BYTES) fails with `InvalidInput` and changes nothing.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Patch<'a> {
    /// The type name.
    pub kind: &'a str,
    /// The record id.
    pub id: &'a str,
    /// Keys to set, with their new values.
    pub set: Map<String, Value>,
    /// Keys to remove; removing a key the record lacks is no error.
    pub remove: Vec<String>,
    /// What happens to the record's expiry.
    pub expiry: PatchExpiry,
    /// Whether a missing (or expired) record is created, starting as `{}`; otherwise the patch
    /// fails with `NotFound`.
    pub create: bool,
}

impl<'a> Patch<'a> {
    /// A patch of `kind`/`id` that changes nothing yet, keeps the expiry and creates a missing
    /// record.
    ///
    /// ```
    /// use databank_core::driver::Patch;
    /// let mut user = serde_json::json!({"name": "Ada", "cart": [1]});
    /// Patch::new("user", "ada").set("email", "ada@example.org".into()).remove("cart").apply(&mut user)?;
    /// assert_eq!(user, serde_json::json!({"name": "Ada", "email": "ada@example.org"}));
    /// # Ok::<(), databank_core::Error>(())
    /// ```
    pub fn new(kind: &'a str, id: &'a str) -> Self {
        Patch {
            kind,
            id,
            set: Map::new(),
            remove: Vec::new(),
            expiry: PatchExpiry::Keep,
            create: true,
        }
    }

    /// The same patch, also setting `key`.
    pub fn set(mut self, key: impl Into<String>, value: Value) -> Self {
        self.set.insert(key.into(), value);
        self
    }

    /// The same patch, also removing `key`.
    pub fn remove(mut self, key: impl Into<String>) -> Self {
        self.remove.push(key.into());
        self
    }

    /// The same patch with this expiry change.
    pub fn expiry(mut self, expiry: PatchExpiry) -> Self {
        self.expiry = expiry;
        self
    }

    /// The same patch, creating a missing record or not.
    pub fn create(mut self, create: bool) -> Self {
        self.create = create;
        self
    }

    /// Checks what [`Bank::patch`] checks before a driver sees the patch.
    pub fn validate(&self) -> Result<()> {
        validate::kind(self.kind)?;
        validate::id(self.id)?;
        let entries = validate::entries_size(&self.set)?;
        validate::check_size(validate::object_size(entries, self.set.len()))?;
        if let Some(key) = self.remove.iter().find(|key| self.set.contains_key(*key)) {
            return Err(Error::InvalidInput(format!(
                "key {:?} is both set and removed by one patch",
                validate::shorten(key)
            )));
        }
        Ok(())
    }

    /// Applies the key changes to `value`, a record's value: `WrongType` if it is not an object,
    /// `InvalidInput` if the result would be too large. On an error `value` is unchanged. For
    /// drivers that patch in their own code under a lock; the expiry is theirs to
    /// [`resolve`](PatchExpiry::resolve).
    pub fn apply(self, value: &mut Value) -> Result<()> {
        self.apply_sized(value, None).map(|_| ())
    }

    /// [`apply`](Patch::apply) for a driver that keeps each record's size (compact JSON bytes):
    /// given the current size, only the keys the patch touches are measured, not the whole
    /// record; without it the record is measured once. Returns the patched record's size.
    ///
    /// ```
    /// use databank_core::driver::Patch;
    /// let mut value = serde_json::json!({"a": 1, "b": "x"});
    /// let size = value.to_string().len();
    /// let new_size = Patch::new("t", "i").set("c", true.into()).remove("a").apply_sized(&mut value, Some(size))?;
    /// assert_eq!(new_size, value.to_string().len());
    /// # Ok::<(), databank_core::Error>(())
    /// ```
    pub fn apply_sized(self, value: &mut Value, size: Option<usize>) -> Result<usize> {
        let object = value
            .as_object_mut()
            .ok_or_else(|| Error::wrong_type(self.kind, self.id, "an object"))?;
        let set_entries = validate::entries_size(&self.set)?;
        // The entries (and their number) that stay as they are.
        let (kept, kept_count) = match size {
            Some(size) => {
                let mut kept = size.saturating_sub(2 + object.len().saturating_sub(1));
                let mut count = object.len();
                // Each touched key once: `remove` may name a key twice.
                let mut seen = std::collections::HashSet::new();
                let removed = self.remove.iter().filter(|key| seen.insert(key.as_str()));
                let touched = self.set.keys().chain(removed);
                for (key, old) in touched.filter_map(|key| object.get_key_value(key)) {
                    kept =
                        kept.saturating_sub(validate::entry_size(key, validate::json_size(old)?));
                    count -= 1;
                }
                (kept, count)
            }
            None => {
                let mut kept = 0;
                let mut count = 0;
                for (key, old) in object.iter() {
                    if !self.set.contains_key(key) && !self.remove.contains(key) {
                        kept += validate::entry_size(key, validate::json_size(old)?);
                        count += 1;
                    }
                }
                (kept, count)
            }
        };
        let new_size = validate::object_size(kept + set_entries, kept_count + self.set.len());
        validate::check_size(new_size)?;
        for key in &self.remove {
            object.remove(key);
        }
        object.extend(self.set);
        Ok(new_size)
    }
}

impl Patch<'_> {
    /// This patch, owning its type name and id: a value to move across threads (into
    /// `spawn_blocking`, say), lent back as a [`Patch`] by [`OwnedPatch::as_patch`].
    ///
    /// ```
    /// use databank_core::driver::Patch;
    /// let owned = Patch::new("user", "ada").set("email", "ada@example.org".into()).into_owned();
    /// let patched = std::thread::spawn(move || {
    ///     let mut user = serde_json::json!({"name": "Ada"});
    ///     owned.as_patch().apply(&mut user).map(|()| user)
    /// })
    /// .join()
    /// .expect("the thread ran")?;
    /// assert_eq!(patched, serde_json::json!({"name": "Ada", "email": "ada@example.org"}));
    /// # Ok::<(), databank_core::Error>(())
    /// ```
    pub fn into_owned(self) -> OwnedPatch {
        OwnedPatch {
            kind: self.kind.to_owned(),
            id: self.id.to_owned(),
            set: self.set,
            remove: self.remove,
            expiry: self.expiry,
            create: self.create,
        }
    }
}

/// A [`Patch`] that owns its type name and id ([`Patch::into_owned`]).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct OwnedPatch {
    /// The type name.
    pub kind: String,
    /// The record id.
    pub id: String,
    /// Keys to set, with their new values.
    pub set: Map<String, Value>,
    /// Keys to remove.
    pub remove: Vec<String>,
    /// What happens to the record's expiry.
    pub expiry: PatchExpiry,
    /// Whether a missing (or expired) record is created.
    pub create: bool,
}

impl OwnedPatch {
    /// The patch again, borrowing this one's type name and id (its keys and values copied).
    pub fn as_patch(&self) -> Patch<'_> {
        Patch {
            kind: &self.kind,
            id: &self.id,
            set: self.set.clone(),
            remove: self.remove.clone(),
            expiry: self.expiry,
            create: self.create,
        }
    }
}

/// What [`PatchCall::applied_on`] did: the new revision, and whether the record stood at the
/// base revision just before the patch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Applied {
    /// The record's revision after the patch.
    pub revision: Revision,
    /// True only when the patch certainly applied to the record at the base revision, so the
    /// value the caller knew there, patched, is the stored value now. False when another write
    /// came between, the patch created the record, or the driver cannot tell.
    pub on_base: bool,
}

impl Applied {
    /// What a driver's [`patch_on`](crate::driver::Driver::patch_on) returns.
    pub fn new(revision: Revision, on_base: bool) -> Self {
        Applied { revision, on_base }
    }
}

/// A patch not yet sent, from [`Bank::patch`]: add keys to set and remove, choose the expiry,
/// then await it. Resolves to the record's new [`Revision`].
///
/// ```
/// # use databank_core::{Bank, Error, json};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Error> {
/// # let bank = Bank::new(databank_memory::MemoryBank::new(databank_core::Schema::new()));
/// use std::time::Duration;
/// bank.create("session", "s1", json!({"user": "ada", "cart": [3]})).await?;
/// bank.patch("session", "s1")
///     .set("theme", "dark")
///     .remove("cart")
///     .expires_in(Duration::from_secs(1800))
///     .must_exist()
///     .await?;
/// assert_eq!(bank.read("session", "s1").await?.value, json!({"user": "ada", "theme": "dark"}));
/// # Ok(()) }
/// ```
#[must_use = "a patch does nothing until it is awaited"]
#[derive(Debug)]
pub struct PatchCall<'a> {
    bank: &'a Bank,
    patch: Patch<'a>,
    expiry_error: Option<Error>,
}

impl<'a> PatchCall<'a> {
    pub(crate) fn new(bank: &'a Bank, kind: &'a str, id: &'a str) -> Self {
        PatchCall {
            bank,
            patch: Patch::new(kind, id),
            expiry_error: None,
        }
    }

    /// Sets a top-level key.
    pub fn set(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.patch.set.insert(key.into(), value.into());
        self
    }

    /// Removes a top-level key (a missing one is no error).
    pub fn remove(mut self, key: impl Into<String>) -> Self {
        self.patch.remove.push(key.into());
        self
    }

    /// The record expires at this instant (`None`: never). Without this or
    /// [`expires_in`](PatchCall::expires_in) the record keeps its expiry.
    pub fn expires_at(mut self, expires_at: Expiry) -> Self {
        self.patch.expiry = PatchExpiry::Set(expires_at);
        self
    }

    /// The record expires this long from now.
    pub fn expires_in(mut self, ttl: Duration) -> Self {
        match chrono::Duration::from_std(ttl)
            .ok()
            .and_then(|ttl| Utc::now().checked_add_signed(ttl))
        {
            Some(at) => self.patch.expiry = PatchExpiry::Set(Some(at)),
            None => {
                self.expiry_error = Some(Error::InvalidInput(format!(
                    "expiry {ttl:?} from now is out of range"
                )))
            }
        }
        self
    }

    /// Fails with `NotFound` when no live record holds the id, instead of creating one.
    pub fn must_exist(mut self) -> Self {
        self.patch.create = false;
        self
    }

    /// Sends the patch, saying also whether it applied to the record at revision `base`: a
    /// caller that keeps the value it read at `base` can then apply the same patch to its copy
    /// and know it holds the stored value, without reading it again.
    ///
    /// ```
    /// # use databank_core::{Bank, Error, json};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Error> {
    /// # let bank = Bank::new(databank_memory::MemoryBank::new(databank_core::Schema::new()));
    /// let base = bank.create("doc", "d", json!({"a": 1})).await?;
    /// let applied = bank.patch("doc", "d").set("b", 2).applied_on(base).await?;
    /// if applied.on_base {
    ///     // {"a": 1} patched is what is stored at `applied.revision`.
    ///     assert_eq!(bank.read("doc", "d").await?.value, json!({"a": 1, "b": 2}));
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn applied_on(self, base: Revision) -> Result<Applied> {
        if let Some(e) = self.expiry_error {
            return Err(e);
        }
        self.patch.validate()?;
        self.bank.live()?.patch_on(self.patch, base).await
    }

    async fn send(self) -> Result<Revision> {
        if let Some(e) = self.expiry_error {
            return Err(e);
        }
        self.patch.validate()?;
        self.bank.live()?.patch(self.patch).await
    }
}

impl<'a> IntoFuture for PatchCall<'a> {
    type Output = Result<Revision>;
    type IntoFuture = Pin<Box<dyn Future<Output = Result<Revision>> + Send + 'a>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.send())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_kept_size_follows_the_value() -> Result<()> {
        let mut value = json!({"a": 1, "b": "x\n", "c": [1, {"d": null}], "": -0.5});
        let mut size = value.to_string().len();
        let patches = [
            Patch::new("t", "i")
                .set("a", json!("longer"))
                .remove("b")
                .remove("b"),
            Patch::new("t", "i")
                .remove("missing")
                .set("e", json!({"f": [true]})),
            Patch::new("t", "i")
                .remove("a")
                .remove("c")
                .remove("")
                .remove("e"),
            Patch::new("t", "i").set("z", json!(1)),
        ];
        for patch in patches {
            size = patch.apply_sized(&mut value, Some(size))?;
            assert_eq!(size, value.to_string().len(), "{value}");
        }
        Ok(())
    }

    #[test]
    fn a_patch_past_the_limit_leaves_the_value_alone() {
        let mut value = json!({"a": "x".repeat(validate::MAX_VALUE_BYTES - 20)});
        let before = value.clone();
        let patch = Patch::new("t", "i").set("b", json!("y".repeat(40)));
        assert!(matches!(
            patch.apply(&mut value),
            Err(Error::InvalidInput(_))
        ));
        assert_eq!(value, before);
        // Replacing the big key with a small one fits.
        assert!(Patch::new("t", "i")
            .set("a", json!(1))
            .set("b", json!(2))
            .apply(&mut value)
            .is_ok());
        assert_eq!(value, json!({"a": 1, "b": 2}));
    }

    #[test]
    fn only_objects_are_patched() {
        let mut value = json!([1]);
        assert!(matches!(
            Patch::new("t", "i").remove("a").apply(&mut value),
            Err(Error::WrongType { .. })
        ));
    }

    #[test]
    fn a_key_set_and_removed_is_refused() {
        let patch = Patch::new("t", "i").set("a", json!(1)).remove("a");
        assert!(matches!(patch.validate(), Err(Error::InvalidInput(_))));
    }
}
