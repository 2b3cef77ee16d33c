//! The crate's request error: an ACME problem, or an internal failure that
//! the WFE turns into `serverInternal` (and logs with the request id).

use acme_wire::{Problem, ProblemType};

/// Error of an ACME operation.
#[derive(Debug, thiserror::Error)]
pub enum AcmeError {
    /// A problem to send to the client as is.
    #[error("{}: {}", .0.kind.urn(), .0.detail)]
    Problem(Problem),
    /// Anything else: logged, reported as serverInternal.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl AcmeError {
    /// Shorthand for a problem with the type's default status.
    pub fn new(kind: ProblemType, detail: impl Into<String>) -> Self {
        AcmeError::Problem(Problem::new(kind, detail))
    }
}

impl From<Problem> for AcmeError {
    fn from(p: Problem) -> Self {
        AcmeError::Problem(p)
    }
}

impl From<crate::store::StoreError> for AcmeError {
    fn from(e: crate::store::StoreError) -> Self {
        AcmeError::Internal(e.into())
    }
}

impl From<acme_wire::WireError> for AcmeError {
    fn from(e: acme_wire::WireError) -> Self {
        AcmeError::Problem(e.into())
    }
}

impl From<crate::limits::Denial> for AcmeError {
    /// A refusal by a rate limit: 429 `rateLimited` naming the limit and
    /// its value, with the exact `Retry-After`.
    fn from(d: crate::limits::Denial) -> Self {
        let mut p = Problem::new(ProblemType::RateLimited, d.detail.clone());
        if let Some(secs) = d.retry_after_secs() {
            p = p.with_retry_after(secs);
        }
        AcmeError::Problem(p)
    }
}

/// Result alias.
pub type AcmeResult<T> = Result<T, AcmeError>;
