//! The status values of ACME objects (RFC 8555 §7.1.6), as enums.
//!
//! Each enum serialises, displays and parses as the lowercase word RFC 8555
//! spells; parsing is exact (no other case, no surrounding space) and refuses
//! an unknown word with [`UnknownStatus`].

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A status word that is not one of the values of its object.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {object} status {value:?}")]
pub struct UnknownStatus {
    /// The object the status was for: "account", "order", "authorization",
    /// "challenge" or "certificate".
    pub object: &'static str,
    /// The refused value, as given.
    pub value: String,
}

/// Defines a status enum with its words, `as_str`, `Display` and `FromStr`.
macro_rules! status_enum {
    (
        $(#[$meta:meta])*
        $name:ident ($object:literal) {
            $( $(#[$vmeta:meta])* $variant:ident => $word:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name {
            $( $(#[$vmeta])* #[serde(rename = $word)] $variant, )+
        }

        impl $name {
            /// Every value, in the order RFC 8555 lists them.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The word RFC 8555 spells for this status.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $word,)+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = UnknownStatus;

            fn from_str(s: &str) -> Result<Self, UnknownStatus> {
                match s {
                    $($word => Ok($name::$variant),)+
                    _ => Err(UnknownStatus {
                        object: $object,
                        value: s.to_owned(),
                    }),
                }
            }
        }
    };
}

status_enum! {
    /// The status of an account (RFC 8555 §7.1.2, §7.1.6).
    AccountStatus ("account") {
        /// In use.
        Valid => "valid",
        /// Deactivated by its holder.
        Deactivated => "deactivated",
        /// Revoked by the server.
        Revoked => "revoked",
    }
}

status_enum! {
    /// The status of an order (RFC 8555 §7.1.3, §7.1.6).
    OrderStatus ("order") {
        /// Waiting for its authorizations.
        Pending => "pending",
        /// Every authorization is valid: the order can be finalized.
        Ready => "ready",
        /// Finalized, the certificate is being issued.
        Processing => "processing",
        /// The certificate was issued.
        Valid => "valid",
        /// Failed, expired or cancelled.
        Invalid => "invalid",
    }
}

status_enum! {
    /// The status of an authorization (RFC 8555 §7.1.4, §7.1.6).
    AuthorizationStatus ("authorization") {
        /// No challenge has succeeded yet.
        Pending => "pending",
        /// A challenge succeeded.
        Valid => "valid",
        /// A challenge failed.
        Invalid => "invalid",
        /// Deactivated by the client (or with its account).
        Deactivated => "deactivated",
        /// Past its expiry.
        Expired => "expired",
        /// Revoked by the server.
        Revoked => "revoked",
    }
}

status_enum! {
    /// The status of a challenge (RFC 8555 §7.1.5, §7.1.6).
    ChallengeStatus ("challenge") {
        /// Not answered yet.
        Pending => "pending",
        /// Answered, being validated.
        Processing => "processing",
        /// Validation succeeded.
        Valid => "valid",
        /// Validation failed.
        Invalid => "invalid",
    }
}

status_enum! {
    /// Whether an issued certificate stands or was revoked.
    CertificateStatus ("certificate") {
        /// Issued and not revoked.
        Valid => "valid",
        /// Revoked (RFC 8555 §7.6).
        Revoked => "revoked",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every value of `T` round-trips through `as_str`, `Display`,
    /// `FromStr` and serde, and the wire word is the one given.
    fn round_trips<T>(all: &[T], as_str: fn(T) -> &'static str, words: &[&str])
    where
        T: Copy + fmt::Debug + fmt::Display + PartialEq + FromStr<Err = UnknownStatus>,
        T: Serialize + for<'de> Deserialize<'de>,
    {
        let got: Vec<&str> = all.iter().map(|s| as_str(*s)).collect();
        assert_eq!(got, words);
        for &s in all {
            let word = as_str(s);
            assert_eq!(s.to_string(), word);
            assert_eq!(word.parse::<T>().unwrap(), s);
            let json = serde_json::to_string(&s).unwrap();
            assert_eq!(json, format!("\"{word}\""));
            assert_eq!(serde_json::from_str::<T>(&json).unwrap(), s);
        }
    }

    /// Odd case, padding, empty and unknown words are refused by `FromStr`
    /// (naming the value) and by serde.
    fn refuses<T>(object: &str, words: &[&str])
    where
        T: fmt::Debug + FromStr<Err = UnknownStatus> + for<'de> Deserialize<'de>,
    {
        let mut bad = vec![String::new(), "unknown".into(), "null".into()];
        for w in words {
            bad.push(w.to_uppercase());
            bad.push(format!("{}{}", w[..1].to_uppercase(), &w[1..]));
            bad.push(format!(" {w}"));
            bad.push(format!("{w} "));
        }
        for value in bad {
            let err = value.parse::<T>().unwrap_err();
            assert_eq!((err.object, err.value.as_str()), (object, value.as_str()));
            assert_eq!(
                err.to_string(),
                format!("unknown {object} status {value:?}")
            );
            let json = serde_json::to_string(&value).unwrap();
            assert!(serde_json::from_str::<T>(&json).is_err(), "{json}");
        }
    }

    #[test]
    fn account() {
        let words = ["valid", "deactivated", "revoked"];
        round_trips(AccountStatus::ALL, AccountStatus::as_str, &words);
        refuses::<AccountStatus>("account", &words);
        assert!("pending".parse::<AccountStatus>().is_err());
    }

    #[test]
    fn order() {
        let words = ["pending", "ready", "processing", "valid", "invalid"];
        round_trips(OrderStatus::ALL, OrderStatus::as_str, &words);
        refuses::<OrderStatus>("order", &words);
        assert!("expired".parse::<OrderStatus>().is_err());
    }

    #[test]
    fn authorization() {
        let words = [
            "pending",
            "valid",
            "invalid",
            "deactivated",
            "expired",
            "revoked",
        ];
        round_trips(
            AuthorizationStatus::ALL,
            AuthorizationStatus::as_str,
            &words,
        );
        refuses::<AuthorizationStatus>("authorization", &words);
        assert!("ready".parse::<AuthorizationStatus>().is_err());
    }

    #[test]
    fn challenge() {
        let words = ["pending", "processing", "valid", "invalid"];
        round_trips(ChallengeStatus::ALL, ChallengeStatus::as_str, &words);
        refuses::<ChallengeStatus>("challenge", &words);
        assert!("ready".parse::<ChallengeStatus>().is_err());
    }

    #[test]
    fn certificate() {
        let words = ["valid", "revoked"];
        round_trips(CertificateStatus::ALL, CertificateStatus::as_str, &words);
        refuses::<CertificateStatus>("certificate", &words);
        assert!("invalid".parse::<CertificateStatus>().is_err());
    }
}
