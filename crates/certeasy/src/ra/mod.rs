//! Registration authority: accounts, orders, authorizations, challenges,
//! finalize and revocation — the RFC 8555 state machines and the issuance
//! policy checks. Called by the WFE with an authenticated account; persists
//! through the store and enqueues jobs. Knows nothing of HTTP.

pub mod accounts;
pub mod orders;
pub mod revoke;

/// Lifetime of a pending order and of its authorizations.
pub const ORDER_LIFETIME_MS: i64 = 7 * 24 * 3600 * 1000;

/// Most identifiers accepted in one order.
pub const MAX_IDENTIFIERS: usize = 100;

/// Status shown for an order, applying expiry lazily: a `pending` or `ready`
/// order past its expiry is `invalid` (RFC 8555 §7.1.6).
pub fn effective_order_status(status: &str, expires: i64, now: i64) -> &str {
    match status {
        "pending" | "ready" if expires <= now => "invalid",
        s => s,
    }
}

/// Status shown for an authorization, applying expiry lazily.
pub fn effective_authz_status(status: &str, expires: i64, now: i64) -> &str {
    match status {
        "pending" | "valid" if expires <= now => "expired",
        s => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_applies_only_to_open_states() {
        assert_eq!(effective_order_status("pending", 10, 11), "invalid");
        assert_eq!(effective_order_status("ready", 10, 11), "invalid");
        assert_eq!(effective_order_status("processing", 10, 11), "processing");
        assert_eq!(effective_order_status("valid", 10, 11), "valid");
        assert_eq!(effective_order_status("pending", 10, 9), "pending");
        assert_eq!(effective_authz_status("pending", 10, 11), "expired");
        assert_eq!(effective_authz_status("invalid", 10, 11), "invalid");
        assert_eq!(effective_authz_status("deactivated", 10, 11), "deactivated");
    }
}
