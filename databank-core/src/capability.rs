//! What a driver does natively, declared rather than faked.

/// What a driver does natively. Every driver offers every operation with the same semantics; a
/// `false` here means the operation is built from others (for example a counter as a
/// read-then-`update_if` loop, still atomic), and the conformance kit uses these flags to pick the
/// behaviours that only make sense for some backends (persistence across a reopen).
///
/// The struct is `#[non_exhaustive]`: a driver outside this crate starts from
/// `Capabilities::default()` (all `false`) and sets the fields it has.
///
/// ```
/// let mut caps = databank_core::Capabilities::default();
/// caps.native_expiry = true;
/// assert!(!caps.persistent);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Capabilities {
    /// Expired records are removed by the backend itself (TTL); otherwise `purge_expired` does it.
    pub native_expiry: bool,
    /// `incr_by` is one backend operation rather than a compare-and-set loop.
    pub native_counters: bool,
    /// `search` on declared index fields uses a backend index rather than scanning.
    pub indexed_search: bool,
    /// `update_if` is one backend operation (CAS, transaction) rather than a lock in this process.
    pub native_conditional_update: bool,
    /// `append`, `prepend` and `remove` are backend operations rather than compare-and-set loops.
    pub native_lists: bool,
    /// `patch` is one backend operation (a script, an update operator, sub-document mutations,
    /// a lock held by the driver) rather than a read and a compare-and-set loop.
    pub native_patch: bool,
    /// Records survive closing and reopening the bank (and a process restart).
    pub persistent: bool,
    /// Several processes may open the same bank at once.
    pub multi_process: bool,
    /// `kinds` can name the bank's types (the provided `Driver::kinds` cannot: `Unsupported`).
    pub lists_kinds: bool,
    /// `count_expired` can tell how many expired records wait for a purge (the provided
    /// `Driver::count_expired` cannot: `Unsupported`).
    pub counts_expired: bool,
    /// `read_if_changed` leaves the value out (unsent, undecoded) when the record is at the
    /// known revision, and `patch_on` tells a patch that landed on its base; the provided
    /// methods read whole and never tell. Callers keeping copies (the session store) use
    /// them only where this is set.
    pub native_read_if_changed: bool,
}
