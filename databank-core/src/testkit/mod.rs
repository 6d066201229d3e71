//! The conformance kit: every behaviour a driver must show, runnable from any driver's tests.
//!
//! A driver's test file defines a [`Harness`] and calls [`conformance_tests!`](crate::conformance_tests);
//! see "Writing a driver" in the crate docs. Each behaviour becomes its own `#[test]`, runs on a
//! fresh multi-threaded tokio runtime against a fresh namespace, and fails with a message naming
//! what went wrong. Behaviours use the type names `person`, `thing`, `counter`, `list` and
//! `session`, with the indices of [`schema`].

use std::collections::hash_map::RandomState;
use std::future::Future;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;

use crate::{Bank, Expiry, Result, Schema};

pub mod behaviours;
mod restart;
mod server;

pub use restart::{
    a_server_down_at_open_is_unavailable, a_timed_out_counter_is_not_retryable,
    survives_a_server_restart, RestartLimits,
};
pub use server::{server_url, MaybeHarness, SUITE_SKIP_PREFIX};

/// Opens the bank a behaviour runs against.
#[async_trait]
pub trait Harness: Send + Sync + 'static {
    /// Opens this harness's namespace (the same one on every call, so a second call reopens what
    /// the first wrote, for drivers that are persistent).
    async fn open(&self, schema: Schema) -> Result<Bank>;

    /// Removes what the behaviour left on the server (a database, keys under a prefix), so long
    /// runs do not fill it. Called after each behaviour, pass or fail; the default does nothing.
    async fn cleanup(&self) {}
}

/// What a behaviour gets: the bank, and a way to open it again.
pub struct Kit {
    /// The bank under test, opened with [`schema`].
    pub bank: Bank,
    harness: Arc<dyn Harness>,
    skipped: Arc<std::sync::Mutex<Option<String>>>,
}

/// The line prefix a skipped behaviour writes to the process's standard error (beside the test
/// harness's capture), so that a runner such as `cargo xtask test` counts it as skipped
/// rather than passed: `databank-testkit: skipped <behaviour>: <reason>`.
pub const SKIP_PREFIX: &str = "databank-testkit: skipped ";

impl Kit {
    /// Marks the behaviour as not applying to this driver (a capability it lacks), with the
    /// reason; the behaviour then returns `Ok(())` without checking anything, and is reported
    /// as skipped, never as passed.
    pub fn skip(&self, reason: &str) {
        *self
            .skipped
            .lock()
            .unwrap_or_else(|poison| poison.into_inner()) = Some(reason.to_owned());
    }

    /// Opens the same namespace again (a second handle, as a restarted process would).
    pub async fn reopen(&self) -> Result<Bank> {
        self.harness.open(schema()).await
    }
}

/// The schema every behaviour runs with.
pub fn schema() -> Schema {
    Schema::new()
        .index("person", ["email", "name.last", "age"])
        .index("session", ["user"])
}

/// A name no other run will pick: `prefix` plus time, process id, a counter and random bits.
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let random = RandomState::new().hash_one(COUNTER.fetch_add(1, Ordering::Relaxed));
    format!(
        "{prefix}{:x}{:x}{:x}",
        std::process::id(),
        COUNTER.load(Ordering::Relaxed),
        random & 0xffff_ffff
    )
}

/// How long one behaviour may take before it fails as hung.
pub const BEHAVIOUR_TIMEOUT: Duration = Duration::from_secs(180);

/// Runs one behaviour against a fresh harness; panics (failing the test) on error or timeout,
/// and reports a behaviour that [skipped](Kit::skip) itself on standard error. A harness
/// function that answers `None` (no server here: see [`server_url`]) runs nothing.
pub fn run<M, F, Fut>(name: &str, make: impl FnOnce() -> M, behaviour: F)
where
    M: MaybeHarness,
    F: FnOnce(Kit) -> Fut,
    Fut: Future<Output = Result<()>>,
{
    let Some(harness) = make().into_harness() else {
        return;
    };
    if let Some(reason) = run_behaviour(harness, behaviour) {
        report_skip(name, &reason);
    }
}

/// What [`conformance_tests!`](crate::conformance_tests) runs: [`run`], and a check that the
/// behaviour skipped itself exactly when the harness declared it not to apply
/// (`does_not_apply`), so that no skip is ever reported as a pass.
pub fn run_declared<M, F, Fut>(
    name: &str,
    declared_not_to_apply: bool,
    make: impl FnOnce() -> M,
    behaviour: F,
) where
    M: MaybeHarness,
    F: FnOnce(Kit) -> Fut,
    Fut: Future<Output = Result<()>>,
{
    let Some(harness) = make().into_harness() else {
        return;
    };
    match (run_behaviour(harness, behaviour), declared_not_to_apply) {
        (Some(reason), true) => report_skip(name, &reason),
        (None, false) => {}
        (Some(reason), false) => panic!(
            "{name} does not apply to this driver ({reason}): name it in \
             `conformance_tests!(harness, does_not_apply: [{name}])`, so that `cargo test` \
             reports it ignored instead of passed"
        ),
        (None, true) => panic!(
            "{name} is declared in `does_not_apply`, yet it ran and passed on this driver: \
             take it out of the list"
        ),
    }
}

/// Writes a skip where a runner sees it: straight to the file descriptor, since the test
/// harness captures `eprintln!`.
fn report_skip(name: &str, reason: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{SKIP_PREFIX}{name}: {reason}");
}

/// Runs one behaviour; panics on error or timeout; returns the reason it gave for skipping.
fn run_behaviour<H, F, Fut>(harness: H, behaviour: F) -> Option<String>
where
    H: Harness,
    F: FnOnce(Kit) -> Fut,
    Fut: Future<Output = Result<()>>,
{
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => panic!("cannot start a tokio runtime: {e}"),
    };
    runtime.block_on(async move {
        let harness: Arc<dyn Harness> = Arc::new(harness);
        let bank = match harness.open(schema()).await {
            Ok(bank) => bank,
            Err(e) => panic!("the harness could not open a bank: {e}"),
        };
        let skipped = Arc::new(std::sync::Mutex::new(None));
        let kit = Kit {
            bank: bank.clone(),
            harness: Arc::clone(&harness),
            skipped: Arc::clone(&skipped),
        };
        let outcome = tokio::time::timeout(BEHAVIOUR_TIMEOUT, behaviour(kit)).await;
        let _ = bank.close().await;
        harness.cleanup().await;
        match outcome {
            Ok(Ok(())) => skipped
                .lock()
                .unwrap_or_else(|poison| poison.into_inner())
                .take(),
            Ok(Err(e)) => panic!("behaviour failed with error: {e} ({e:?})"),
            Err(_) => panic!("behaviour did not finish within {BEHAVIOUR_TIMEOUT:?}"),
        }
    })
}

/// An expiry `ms` milliseconds from now.
pub fn in_ms(ms: i64) -> Expiry {
    Some(Utc::now() + chrono::Duration::milliseconds(ms))
}

/// The lifetime (ms) of a record a behaviour must still find live after a few more calls:
/// long enough for those calls on a loaded machine against a slow server (a busy SecantusDB
/// answers a write in up to a second), short enough to wait out.
pub const SHORT_LIFE_MS: i64 = 3_000;

/// Sleeps until `expiry` has passed, plus a margin for the server's clock granularity.
/// Time is the subject of the behaviours that call it: they check what happens after an
/// expiry, so they wait from the expiry itself, never a fixed time from an earlier call.
pub async fn sleep_past(expiry: Expiry) {
    // Every driver checks the stored millisecond on each read, so 2 ms past is past; a wider
    // margin would let a driver that honours expiries late pass.
    const MARGIN: chrono::Duration = chrono::Duration::milliseconds(2);
    if let Some(at) = expiry {
        let wait = (at + MARGIN - Utc::now()).to_std().unwrap_or_default();
        tokio::time::sleep(wait).await;
    }
}

/// Defines one `#[test]` per conformance behaviour, each running against a bank from `$harness`
/// (a function or closure returning a [`Harness`](crate::testkit::Harness), or an `Option` of
/// one: a driver whose server is missing here answers `None`, from
/// [`server_url`](crate::testkit::server_url), and its tests then run nothing, after one line
/// saying so; under `CI=true` they fail instead).
///
/// Behaviours that do not apply to a driver (say, [`reopen_keeps_records`](behaviours::reopen_keeps_records)
/// for one that keeps nothing across a reopen) are named after `does_not_apply:`; their tests
/// are generated `#[ignore]`d, so plain `cargo test` reports them as ignored, never as passed.
/// Run with `--ignored`, such a test checks that the behaviour really does not apply (it calls
/// [`Kit::skip`]); and a behaviour that skips itself without being named here fails, saying
/// what to add.
///
/// `conformance_tests!(harness)`, or `conformance_tests!(|| Memory, does_not_apply:
/// [reopen_keeps_records])` for a driver that keeps nothing across a reopen. A whole driver
/// and its harness, compiled with these docs, are under "A whole driver" in
/// [`driver`](crate::driver).
#[macro_export]
macro_rules! conformance_tests {
    ($harness:expr $(,)?) => {
        $crate::conformance_tests!($harness, does_not_apply: []);
    };
    ($harness:expr, does_not_apply: [$($skip:ident),* $(,)?] $(,)?) => {
        $crate::__conformance_tests!(($) $harness; [$($skip),*];
            create_then_read,
            create_existing_is_already_exists,
            create_returns_the_revision_read_sees,
            read_missing_is_not_found,
            update_replaces_the_whole_value,
            update_missing_is_not_found,
            update_missing_indexed_type_is_not_found,
            update_changes_the_revision,
            save_creates_a_missing_record,
            save_replaces_an_existing_record,
            concurrent_saves_of_one_id_never_fail,
            concurrent_saves_of_distinct_ids_all_land,
            delete_removes_the_record,
            delete_missing_is_not_found,
            delete_missing_among_others_is_not_found,
            delete_then_create_again,
            types_are_isolated,
            read_all_maps_missing_ids_to_none,
            read_all_of_no_ids_is_empty,
            update_if_at_current_revision_succeeds,
            update_if_at_stale_revision_conflicts,
            update_if_missing_is_not_found,
            update_if_loops_lose_no_update,
            search_on_an_indexed_field,
            search_on_an_unindexed_field,
            search_on_a_dotted_path,
            search_equality_is_typed,
            search_negative_zero_equals_zero,
            search_with_no_hits_is_empty,
            search_criteria_are_anded,
            search_sees_updates_not_old_values,
            search_after_delete_finds_nothing,
            search_operator_lookalikes_match_literally,
            search_missing_field_does_not_match_null,
            search_unknown_type_is_empty,
            search_ignores_non_object_values,
            search_with_no_criteria_returns_all,
            search_bad_criteria_is_invalid_input,
            scan_unknown_type_is_empty,
            scan_yields_every_record_after_1000_writes,
            scan_skips_other_types,
            count_counts_live_records,
            kinds_lists_the_types_with_live_records,
            capabilities_hold,
            scan_records_carry_revision_and_expiry,
            incr_missing_starts_at_zero,
            decr_goes_below_zero,
            incr_by_adds_the_delta,
            incr_non_integer_is_wrong_type,
            incr_overflow_is_wrong_type,
            concurrent_incr_loses_no_increment,
            append_and_prepend,
            append_to_missing_creates_a_list,
            list_ops_on_a_non_array_are_wrong_type,
            item_out_of_range_is_no_such_item,
            slice_clamps_to_the_list,
            index_of_uses_deep_equality,
            remove_takes_the_first_occurrence,
            remove_absent_member_is_ok,
            length_of_missing_is_zero,
            concurrent_appends_lose_nothing,
            provided_loops_give_up_on_endless_conflicts,
            patch_sets_and_removes_keys,
            patch_creates_a_missing_record_unless_told_not_to,
            patch_of_an_expired_record_starts_afresh,
            patch_removing_a_missing_key_is_ok,
            patch_of_odd_keys_round_trips,
            patch_values_round_trip_exactly,
            patch_past_the_size_limit_fails_and_changes_nothing,
            patch_size_limit_is_exact_after_patches,
            patch_sets_keeps_and_clears_the_expiry,
            patch_advances_the_revision,
            patch_of_a_non_object_is_wrong_type,
            concurrent_patches_of_distinct_keys_lose_nothing,
            patch_racing_a_delete_never_revives_the_record,
            patch_updates_what_search_finds,
            read_if_changed_leaves_out_only_what_the_caller_has,
            patch_on_base_is_only_claimed_when_certain,
            an_expiring_patch_on_a_base_checks_the_record,
            expired_record_is_invisible_to_read,
            expiry_takes_effect_at_its_instant,
            expired_records_are_invisible_to_search_scan_and_count,
            create_over_an_expired_record_succeeds,
            update_of_an_expired_record_is_not_found,
            read_reports_the_expiry,
            touch_extends_the_expiry,
            touch_can_clear_the_expiry,
            touch_keeps_the_revision,
            touch_missing_is_not_found,
            purge_expired_counts_what_it_deletes,
            count_expired_counts_what_a_purge_removes,
            counters_and_lists_keep_the_expiry,
            hostile_ids_round_trip,
            ids_differing_in_case_do_not_collide,
            long_ids_round_trip,
            invalid_ids_are_invalid_input,
            invalid_type_names_are_invalid_input,
            oversized_value_is_refused_and_the_old_one_kept,
            deeply_nested_value_is_invalid_input,
            one_mib_value_round_trips,
            unicode_round_trips,
            non_object_values_round_trip,
            numbers_round_trip_exactly,
            keys_with_dots_and_dollars_round_trip,
            typed_helpers_round_trip,
            close_then_use_is_closed,
            close_is_idempotent,
            reopen_keeps_records,
        );
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_tests {
    (($d:tt) $harness:expr; [$($skip:ident),*]; $($name:ident),* $(,)?) => {
        // One arm per behaviour declared not to apply, then the rest: a local macro, because
        // `macro_rules` cannot test an identifier's membership in a list any other way.
        macro_rules! __databank_kit_test {
            $(
                ($skip) => {
                    #[test]
                    #[ignore = "declared not to apply to this driver (does_not_apply)"]
                    fn $skip() {
                        $crate::testkit::run_declared(
                            stringify!($skip),
                            true,
                            $harness,
                            $crate::testkit::behaviours::$skip,
                        );
                    }
                };
            )*
            ($d other:ident) => {
                #[test]
                fn $d other() {
                    $crate::testkit::run_declared(
                        stringify!($d other),
                        false,
                        $harness,
                        $crate::testkit::behaviours::$d other,
                    );
                }
            };
        }
        $( __databank_kit_test!($name); )*
    };
}
