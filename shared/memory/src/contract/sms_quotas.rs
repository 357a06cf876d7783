//! The [`SmsQuotas`](cuba_core::delivery::ports::SmsQuotas) contract: per-user and per-phone
//! caps, the daily budgets.

use cuba_core::delivery::alert::AlertId;
use cuba_core::delivery::ports::{SmsBudget, SmsQuota, SmsQuotas};
use cuba_core::model::domain::{Millis, PhoneNumber, UserId};

use super::{at, id, rule};

/// SMS quotas: per user and day of theirs, or a rolling 24 hours per phone, keyed by alert; a
/// daily budget count.
pub async fn sms_quotas(quotas: &dyn SmsQuotas, base: Millis) {
    let day = jiff::civil::date(2026, 6, 11);
    let user = SmsQuota::UserDay(UserId(7), day);
    let alert_id =
        |n: u64| AlertId::for_trigger(&rule("quota-rule"), UserId(7), &id(&format!("t{n}")));
    for n in 0..3 {
        assert_eq!(
            quotas.take(&user, 3, &alert_id(n), at(base, n)).await,
            Ok(true)
        );
    }
    assert_eq!(
        quotas.take(&user, 3, &alert_id(3), at(base, 10)).await,
        Ok(false),
        "the cap is reached"
    );
    assert_eq!(
        quotas.take(&user, 3, &alert_id(1), at(base, 11)).await,
        Ok(true),
        "an alert already counted counts again (a retry)"
    );
    let next_day = SmsQuota::UserDay(UserId(7), day.tomorrow().expect("a date"));
    assert_eq!(
        quotas.take(&next_day, 3, &alert_id(3), at(base, 11)).await,
        Ok(true),
        "the user's next day counts apart"
    );
    let number = PhoneNumber::parse("+15555550100").expect("a phone number");
    let phone = SmsQuota::Phone(number.clone());
    assert_eq!(
        quotas.take(&phone, 3, &alert_id(3), at(base, 12)).await,
        Ok(true),
        "quotas are separate"
    );
    let codes_to = SmsQuota::CodesTo(number);
    for n in 10..13 {
        assert_eq!(
            quotas.take(&codes_to, 3, &alert_id(n), at(base, n)).await,
            Ok(true)
        );
    }
    assert_eq!(
        quotas.take(&codes_to, 3, &alert_id(13), at(base, 13)).await,
        Ok(false),
        "the number's code cap is reached"
    );
    assert_eq!(
        quotas.take(&phone, 3, &alert_id(4), at(base, 14)).await,
        Ok(true),
        "codes to a number never count against its alerts"
    );
    assert_eq!(quotas.give_back(&codes_to, &alert_id(11)).await, Ok(()));
    assert_eq!(
        quotas.give_back(&codes_to, &alert_id(11)).await,
        Ok(()),
        "giving back what is not counted is a no-op"
    );
    assert_eq!(
        quotas.take(&codes_to, 3, &alert_id(13), at(base, 15)).await,
        Ok(true),
        "a count given back makes room"
    );
    assert_eq!(
        quotas.take(&codes_to, 3, &alert_id(14), at(base, 16)).await,
        Ok(false)
    );
    let next_day = at(base, 24 * 3600 * 1000);
    assert_eq!(
        quotas.take(&user, 3, &alert_id(3), next_day).await,
        Ok(true),
        "the oldest count left the 24 hours"
    );
    assert_eq!(
        quotas.take(&user, 0, &alert_id(9), next_day).await,
        Ok(false),
        "a cap of 0 sends nothing"
    );

    let day = base.0 / (24 * 3600 * 1000);
    let (alerts, codes) = (SmsBudget::Alerts, SmsBudget::Codes);
    assert_eq!(quotas.take_budget(codes, day, 2).await, Ok(true));
    assert_eq!(quotas.take_budget(codes, day, 2).await, Ok(true));
    assert_eq!(quotas.take_budget(codes, day, 2).await, Ok(false));
    assert_eq!(quotas.give_back_budget(codes, day).await, Ok(()));
    assert_eq!(
        quotas.take_budget(codes, day, 2).await,
        Ok(true),
        "a unit given back makes room"
    );
    assert_eq!(quotas.take_budget(codes, day, 2).await, Ok(false));
    assert_eq!(quotas.give_back_budget(codes, day + 7).await, Ok(()));
    assert_eq!(
        quotas.take_budget(codes, day + 7, 1).await,
        Ok(true),
        "giving back never goes below zero"
    );
    assert_eq!(quotas.take_budget(codes, day + 7, 1).await, Ok(false));
    assert_eq!(
        quotas.take_budget(alerts, day, 2).await,
        Ok(true),
        "a spent code budget leaves the alerts' whole"
    );
    assert_eq!(quotas.take_budget(alerts, day, 2).await, Ok(true));
    assert_eq!(quotas.take_budget(alerts, day, 2).await, Ok(false));
    assert_eq!(
        quotas.take_budget(alerts, day + 1, 2).await,
        Ok(true),
        "per day"
    );
}
