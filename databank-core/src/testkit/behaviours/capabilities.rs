use serde_json::json;

use crate::testkit::Kit;
use crate::{Error, Result};

/// What a driver's [`Capabilities`](crate::Capabilities) claim holds. Each `supports_*` flag
/// matches what the bank answers: on, the operation works; off, it is `Unsupported` (the bank
/// refuses it before calling the driver). Flags that need others come with them: a bank that
/// several processes share (`multi_process`) keeps its records past a process
/// (`persistent`) and checks a compare-and-set in the backend (`native_conditional_update`, not a
/// lock held by one process); a patch that tells its base in its own step (`native_patch_on`)
/// is one backend step (`native_patch`). The behaviours of each flag check the rest:
/// `reopen_keeps_records` for `persistent`, `patch_on_base_is_only_claimed_when_certain` for
/// `native_patch_on`, the expiry behaviours for `native_expiry`.
pub async fn capabilities_hold(kit: Kit) -> Result<()> {
    let caps = kit.bank.capabilities();
    kit.bank.create("thing", "a", json!({"n": 1})).await?;

    match (caps.supports_kinds, kit.bank.kinds().await) {
        (true, Ok(kinds)) => assert!(
            kinds.iter().any(|kind| kind == "thing"),
            "supports_kinds is on, but kinds() left out a type with a record: {kinds:?}"
        ),
        (false, Err(Error::Unsupported(_))) => {}
        (claimed, other) => panic!("supports_kinds is {claimed}, and kinds() gave {other:?}"),
    }
    match (
        caps.supports_count_expired,
        kit.bank.count_expired("thing").await,
    ) {
        (true, Ok(0)) | (false, Err(Error::Unsupported(_))) => {}
        (claimed, other) => panic!(
            "supports_count_expired is {claimed}, and count_expired() of a type with no \
             expired record gave {other:?}"
        ),
    }

    if caps.multi_process {
        assert!(
            caps.persistent,
            "multi_process is on but persistent is off: {caps:?}"
        );
        assert!(
            caps.native_conditional_update,
            "multi_process is on but native_conditional_update is off (a lock in one process \
             does not hold across processes): {caps:?}"
        );
    }
    if caps.native_patch_on {
        assert!(
            caps.native_patch,
            "native_patch_on is on but native_patch is off: {caps:?}"
        );
    }
    Ok(())
}
