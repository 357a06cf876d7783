//! Taking carrier receipts in. A receipt and Cuba's own record of the message id can arrive in
//! either order: each is written beside the message id in one atomic step that returns what the
//! other left, so whichever comes second applies the receipt.

use std::sync::Arc;

use crate::delivery::alert::AlertId;
use crate::delivery::ports::AlertLedger;
use crate::delivery::receipts::SmsReceipt;
use crate::model::clock::Clock;
use crate::model::ports::PortError;

/// What became of one receipt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReceiptTaken {
    /// Its alert is settled `delivered` or `failed`.
    Applied(AlertId),
    /// No alert is linked to its message id yet: kept, and applied when the link is written.
    Kept,
}

/// Takes receipts in, from whatever reads SNS's delivery status log.
#[derive(Clone)]
pub struct ReceiptDesk {
    pub ledger: Arc<dyn AlertLedger>,
    pub clock: Arc<dyn Clock>,
}

impl ReceiptDesk {
    pub async fn take(&self, receipt: &SmsReceipt) -> Result<ReceiptTaken, PortError> {
        let now = self.clock.now();
        match self.ledger.receive_receipt(receipt, now).await? {
            Some(alert) => {
                self.ledger.apply_receipt(&alert, receipt, now).await?;
                Ok(ReceiptTaken::Applied(alert))
            }
            None => Ok(ReceiptTaken::Kept),
        }
    }
}
