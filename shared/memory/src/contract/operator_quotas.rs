//! The [`OperatorQuotas`](cuba_core::delivery::ports::OperatorQuotas) contract: counts per rule
//! and hour up to the cap, never past it.

use cuba_core::delivery::ports::OperatorQuotas;
use cuba_core::model::domain::Millis;

use super::rule;

/// Takes up to the cap and no further, each rule and hour apart.
pub async fn operator_quotas(quotas: &dyn OperatorQuotas, base: Millis) {
    let hour = base.0 / 3_600_000;
    let (noisy, quiet) = (rule("noisy-rule"), rule("quiet-rule"));
    for n in 1..=3 {
        assert_eq!(quotas.take(&noisy, hour, 3).await, Ok(true), "alert {n}");
    }
    assert_eq!(
        quotas.take(&noisy, hour, 3).await,
        Ok(false),
        "over the cap"
    );
    assert_eq!(
        quotas.take(&noisy, hour, 3).await,
        Ok(false),
        "and stays over"
    );
    assert_eq!(
        quotas.take(&quiet, hour, 3).await,
        Ok(true),
        "another rule counts apart"
    );
    assert_eq!(
        quotas.take(&noisy, hour + 1, 3).await,
        Ok(true),
        "the next hour starts from zero"
    );
    assert_eq!(
        quotas.take(&quiet, hour, 0).await,
        Ok(false),
        "a cap of 0 takes none"
    );
}
