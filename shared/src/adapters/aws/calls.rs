//! Counts DynamoDB calls by operation, through an SDK interceptor: how tests
//! and the benchmark prove what each endpoint costs (and that nothing scans).

use aws_sdk_dynamodb::config::interceptors::BeforeSerializationInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

#[derive(Debug, Clone, Default)]
pub struct DynamoCalls(Arc<Mutex<BTreeMap<String, u64>>>);

impl DynamoCalls {
    /// Calls so far, by operation name (`GetItem`, `Query`, ...).
    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Returns the calls so far and starts counting from zero.
    pub fn take(&self) -> BTreeMap<String, u64> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

impl Intercept for DynamoCalls {
    fn name(&self) -> &'static str {
        "DynamoCalls"
    }

    fn read_before_serialization(
        &self,
        _context: &BeforeSerializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        // Once per operation (retries re-enter later phases, not this one).
        if let Some(meta) = cfg.load::<Metadata>() {
            *self
                .0
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .entry(meta.name().to_owned())
                .or_default() += 1;
        }
        Ok(())
    }
}

/// Counts every AWS call of every client by `service:Operation`
/// (`DynamoDB:GetItem`, `Secrets Manager:GetSecretValue`, `SES:SendEmail`,
/// ...): what the budget test compares with each function's time budget.
#[derive(Debug, Clone, Default)]
pub struct AwsCalls(Arc<Mutex<BTreeMap<String, u64>>>);

impl AwsCalls {
    /// Returns the calls so far and starts counting from zero.
    pub fn take(&self) -> BTreeMap<String, u64> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

impl Intercept for AwsCalls {
    fn name(&self) -> &'static str {
        "AwsCalls"
    }

    fn read_before_serialization(
        &self,
        _context: &BeforeSerializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(meta) = cfg.load::<Metadata>() {
            *self
                .0
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .entry(format!("{}:{}", meta.service(), meta.name()))
                .or_default() += 1;
        }
        Ok(())
    }
}
