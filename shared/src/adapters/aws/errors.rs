//! Turning SDK errors into what the service understands: a conflict, a
//! dependency that is down (503, retry), or a real fault.

use crate::error::StoreError;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

pub trait Classify<T> {
    fn classify(self) -> Result<T, StoreError>;
}

impl<T, E, R> Classify<T> for Result<T, SdkError<E, R>>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    fn classify(self) -> Result<T, StoreError> {
        self.map_err(store_error)
    }
}

pub fn store_error<E, R>(e: SdkError<E, R>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    let detail = anyhow::anyhow!("{}", DisplayErrorContext(&e));
    match &e {
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) => StoreError::Unavailable(detail),
        SdkError::ServiceError(service) => {
            let err = service.err();
            match err.code() {
                Some("ConditionalCheckFailedException") => StoreError::Conflict(err.message().unwrap_or("").to_owned()),
                Some("TransactionCanceledException") => {
                    let message = err.message().unwrap_or("");
                    if message.contains("ConditionalCheckFailed") || message.contains("TransactionConflict") {
                        StoreError::Conflict(message.to_owned())
                    } else {
                        StoreError::Unavailable(detail)
                    }
                }
                Some(
                    "ProvisionedThroughputExceededException"
                    | "ThrottlingException"
                    | "RequestLimitExceeded"
                    | "InternalServerError"
                    | "ServiceUnavailable"
                    | "TransactionInProgressException",
                ) => StoreError::Unavailable(detail),
                _ => StoreError::Internal(detail),
            }
        }
        _ => StoreError::Internal(detail),
    }
}

/// Whether an SDK error is the service saying `code`.
pub fn is_code<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>, code: &str) -> bool {
    matches!(e, SdkError::ServiceError(s) if s.err().code() == Some(code))
}
