//! What a driver can do, what its banks are, and how it does what every driver does: each flag
//! says one thing.

/// A driver's capabilities, in three groups, each flag saying one thing:
///
/// - **What it supports** beyond the operations every driver has (`supports_*`): the [`Bank`]
///   refuses an operation whose flag is off with `Error::Unsupported`, before calling the
///   driver.
/// - **What its banks are** (`persistent`, `multi_process`).
/// - **How** it does an operation every driver has (`native_*`): as one backend operation, or
///   through the method [`Driver`] provides (a read and a compare-and-set loop, still atomic).
///   The semantics are the same either way; only the cost differs. The conformance kit checks
///   what a `native_*` flag promises where it shows (a patch that says it landed on its base).
///
/// The struct is `#[non_exhaustive]`: a driver outside this crate starts from
/// `Capabilities::default()` (all `false`) and sets the fields it has.
///
/// ```
/// let mut caps = databank_core::Capabilities::default();
/// caps.native_expiry = true;
/// assert!(!caps.persistent && !caps.supports_kinds);
/// ```
///
/// [`Bank`]: crate::Bank
/// [`Driver`]: crate::driver::Driver
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Capabilities {
    /// `kinds` names the bank's types (the provided `Driver::kinds` cannot); off, `Bank::kinds`
    /// is `Unsupported`.
    pub supports_kinds: bool,
    /// `count_expired` tells how many expired records wait for a purge (the provided
    /// `Driver::count_expired` cannot); off, `Bank::count_expired` is `Unsupported`.
    pub supports_count_expired: bool,
    /// Records survive closing and reopening the bank (and a process restart).
    pub persistent: bool,
    /// Several processes may open the same bank at once.
    pub multi_process: bool,
    /// Expired records are removed by the backend itself (TTL); otherwise `purge_expired` does it.
    pub native_expiry: bool,
    /// `incr_by` is one backend operation rather than a compare-and-set loop.
    pub native_counters: bool,
    /// `search` on declared index fields uses a backend index rather than scanning.
    pub native_search: bool,
    /// `update_if` is one backend operation (CAS, transaction) rather than a lock in this process.
    pub native_conditional_update: bool,
    /// `append`, `prepend` and `remove` are backend operations rather than compare-and-set loops.
    pub native_lists: bool,
    /// `patch` is one backend operation (a script, an update operator, sub-document mutations,
    /// a lock held by the driver) rather than a read and a compare-and-set loop.
    pub native_patch: bool,
    /// `patch_on` tells a patch that landed on its base (`Applied::on_base`) in the same
    /// operation; the provided method never claims a base.
    pub native_patch_on: bool,
    /// `read_if_changed` leaves the value out (unsent, undecoded) when the record is at the
    /// known revision; the provided method reads the whole record and compares.
    pub native_read_if_changed: bool,
}
