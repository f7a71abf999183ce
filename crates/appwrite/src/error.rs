//! The one error type of this crate. Appwrite's `{message, code, type, version}` bodies become
//! [`Error::Api`] with a typed [`ErrorKind`]; everything else says where it went wrong.

use std::time::Duration;

use serde::Deserialize;

/// Every failure a call can return.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Appwrite (or a proxy in front of it) answered with a non-success status.
    #[error("appwrite {status} {kind}: {message}")]
    Api {
        status: u16,
        kind: ErrorKind,
        message: String,
    },
    /// The request could not be sent or the response not read (connection refused, reset, DNS).
    #[error("appwrite transport error: {0}")]
    Transport(#[source] reqwest::Error),
    /// No complete response within the configured timeout.
    #[error("appwrite request timed out")]
    Timeout,
    /// The response arrived but was not the JSON we expected.
    #[error("could not decode {what} from appwrite")]
    Decode {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
    /// The caller asked for something that cannot be sent (bad endpoint, bad id, bad range).
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// An attribute or index reached the `failed` status.
    #[error("{what} failed on the server: {message}")]
    SchemaFailed { what: String, message: String },
    /// Polling for a condition (attribute or index available) ran out of time.
    #[error("gave up waiting after {waited:?} for {what}")]
    WaitTimeout { what: String, waited: Duration },
}

impl Error {
    /// The Appwrite error type, when Appwrite said one.
    pub fn kind(&self) -> Option<&ErrorKind> {
        match self {
            Error::Api { kind, .. } => Some(kind),
            _ => None,
        }
    }

    /// The HTTP status, for API errors.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Api { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// A resource (document, user, team, ...) does not exist. A 404 for an unknown route is not
    /// "not found": it means the endpoint or the server version is wrong.
    pub fn is_not_found(&self) -> bool {
        self.kind().is_some_and(ErrorKind::is_not_found)
    }

    /// The thing already exists (409): for a create with an explicit id it means "already done".
    pub fn is_conflict(&self) -> bool {
        match self {
            Error::Api { status, kind, .. } => *status == 409 || kind.is_conflict(),
            _ => false,
        }
    }

    /// Worth trying again later: rate limits, server errors, timeouts and transport failures.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Api { status, kind, .. } => {
                *status == 429
                    || *kind == ErrorKind::GeneralRateLimitExceeded
                    || (*status >= 500
                        && *status != 501
                        && *kind != ErrorKind::GeneralNotImplemented)
            }
            Error::Transport(_) | Error::Timeout => true,
            Error::Decode { .. }
            | Error::InvalidInput(_)
            | Error::SchemaFailed { .. }
            | Error::WaitTimeout { .. } => false,
        }
    }

    /// The request certainly never reached the server (connection refused, DNS failure), so even
    /// a non-idempotent call may be sent again.
    pub(crate) fn is_connect(&self) -> bool {
        matches!(self, Error::Transport(e) if e.is_connect())
    }

    pub(crate) fn from_reqwest(e: reqwest::Error) -> Self {
        if e.is_timeout() {
            Error::Timeout
        } else {
            Error::Transport(e)
        }
    }

    /// Builds the error for a non-success response. Bodies that are not Appwrite JSON (an HTML
    /// page from a proxy, an empty 502) keep their status and a short excerpt as the message.
    pub fn from_response(status: u16, body: &[u8]) -> Self {
        #[derive(Deserialize)]
        struct Body {
            #[serde(default)]
            message: String,
            #[serde(default, rename = "type")]
            kind: Option<String>,
        }
        match serde_json::from_slice::<Body>(body) {
            Ok(b) => Error::Api {
                status,
                kind: b
                    .kind
                    .filter(|k| !k.is_empty())
                    .map_or(ErrorKind::Unknown, |k| ErrorKind::from_type(&k)),
                message: b.message,
            },
            Err(_) => {
                let text = String::from_utf8_lossy(body);
                let mut message: String = text.trim().chars().take(200).collect();
                if message.is_empty() {
                    message = format!("HTTP {status} with a non-JSON body");
                }
                Error::Api {
                    status,
                    kind: ErrorKind::Unknown,
                    message,
                }
            }
        }
    }
}

macro_rules! error_kinds {
    ($($variant:ident => $wire:literal,)*) => {
        /// Appwrite's error `type`s that this project meets. Unlisted types keep their text in
        /// [`ErrorKind::Other`]; a body without a type (a proxy's page) is [`ErrorKind::Unknown`].
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum ErrorKind {
            $($variant,)*
            Other(String),
            Unknown,
        }

        impl ErrorKind {
            pub fn from_type(t: &str) -> Self {
                match t {
                    $($wire => ErrorKind::$variant,)*
                    other => ErrorKind::Other(other.to_owned()),
                }
            }

            /// The wire name, e.g. `document_not_found`.
            pub fn as_str(&self) -> &str {
                match self {
                    $(ErrorKind::$variant => $wire,)*
                    ErrorKind::Other(t) => t,
                    ErrorKind::Unknown => "unknown",
                }
            }
        }
    };
}

error_kinds! {
    DocumentNotFound => "document_not_found",
    DocumentAlreadyExists => "document_already_exists",
    DocumentInvalidStructure => "document_invalid_structure",
    DocumentMissingPayload => "document_missing_payload",
    UserNotFound => "user_not_found",
    UserAlreadyExists => "user_already_exists",
    UserEmailAlreadyExists => "user_email_already_exists",
    UserInvalidCredentials => "user_invalid_credentials",
    UserUnauthorized => "user_unauthorized",
    UserSessionNotFound => "user_session_not_found",
    UserInvalidToken => "user_invalid_token",
    UserPasswordMismatch => "user_password_mismatch",
    UserSessionAlreadyExists => "user_session_already_exists",
    UserBlocked => "user_blocked",
    UserKeyAndSessionSet => "user_key_and_session_set",
    GeneralUnauthorizedScope => "general_unauthorized_scope",
    GeneralArgumentInvalid => "general_argument_invalid",
    GeneralQueryInvalid => "general_query_invalid",
    GeneralRateLimitExceeded => "general_rate_limit_exceeded",
    GeneralRouteNotFound => "general_route_not_found",
    GeneralNotImplemented => "general_not_implemented",
    GeneralServerError => "general_server_error",
    GeneralUnknown => "general_unknown",
    GeneralAccessForbidden => "general_access_forbidden",
    TeamNotFound => "team_not_found",
    TeamAlreadyExists => "team_already_exists",
    MembershipNotFound => "membership_not_found",
    MembershipAlreadyConfirmed => "membership_already_confirmed",
    DatabaseNotFound => "database_not_found",
    DatabaseAlreadyExists => "database_already_exists",
    CollectionNotFound => "collection_not_found",
    CollectionAlreadyExists => "collection_already_exists",
    AttributeNotFound => "attribute_not_found",
    AttributeAlreadyExists => "attribute_already_exists",
    AttributeNotAvailable => "attribute_not_available",
    IndexNotFound => "index_not_found",
    IndexAlreadyExists => "index_already_exists",
    StorageFileNotFound => "storage_file_not_found",
    StorageBucketNotFound => "storage_bucket_not_found",
    StorageBucketAlreadyExists => "storage_bucket_already_exists",
    StorageInvalidFileSize => "storage_invalid_file_size",
    StorageFileTypeUnsupported => "storage_file_type_unsupported",
    StorageFileAlreadyExists => "storage_file_already_exists",
    StorageInvalidRange => "storage_invalid_range",
    ProjectNotFound => "project_not_found",
}

impl ErrorKind {
    /// A missing resource (not a missing route).
    pub fn is_not_found(&self) -> bool {
        match self {
            ErrorKind::GeneralRouteNotFound => false,
            ErrorKind::Other(t) => t.ends_with("_not_found"),
            other => other.as_str().ends_with("_not_found"),
        }
    }

    /// Something that already exists.
    pub fn is_conflict(&self) -> bool {
        *self == ErrorKind::MembershipAlreadyConfirmed || self.as_str().ends_with("_already_exists")
    }
}

impl std::fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_appwrite_error_bodies() {
        let body = br#"{"message":"Document with the requested ID could not be found.","code":404,"type":"document_not_found","version":"1.8.1"}"#;
        let err = Error::from_response(404, body);
        assert_eq!(err.kind(), Some(&ErrorKind::DocumentNotFound));
        assert!(err.is_not_found());
        assert!(!err.is_conflict());
        assert!(!err.is_retryable());
        assert!(err.to_string().contains("document_not_found"));

        let err = Error::from_response(
            409,
            br#"{"message":"x","code":409,"type":"document_already_exists","version":"1.8.1"}"#,
        );
        assert!(err.is_conflict());
        assert_eq!(err.kind(), Some(&ErrorKind::DocumentAlreadyExists));

        let err = Error::from_response(
            409,
            br#"{"message":"x","code":409,"type":"membership_already_confirmed"}"#,
        );
        assert!(err.is_conflict());

        let err = Error::from_response(
            403,
            br#"{"message":"x","code":403,"type":"user_key_and_session_set"}"#,
        );
        assert_eq!(err.kind(), Some(&ErrorKind::UserKeyAndSessionSet));

        let err = Error::from_response(
            404,
            br#"{"message":"x","code":404,"type":"some_new_thing_not_found"}"#,
        );
        assert_eq!(
            err.kind(),
            Some(&ErrorKind::Other("some_new_thing_not_found".into()))
        );
        assert!(err.is_not_found());

        let err = Error::from_response(
            404,
            br#"{"message":"x","code":404,"type":"general_route_not_found"}"#,
        );
        assert!(!err.is_not_found());
    }

    #[test]
    fn every_known_kind_round_trips() {
        for t in [
            "user_not_found",
            "user_email_already_exists",
            "general_query_invalid",
            "storage_invalid_file_size",
            "attribute_not_available",
            "project_not_found",
        ] {
            assert_eq!(ErrorKind::from_type(t).as_str(), t);
            assert!(!matches!(ErrorKind::from_type(t), ErrorKind::Other(_)));
        }
    }

    #[test]
    fn non_json_bodies_are_graceful() {
        let err = Error::from_response(502, b"<html><body>Bad Gateway</body></html>");
        assert_eq!(err.status(), Some(502));
        assert_eq!(err.kind(), Some(&ErrorKind::Unknown));
        assert!(err.is_retryable());
        assert!(err.to_string().contains("Bad Gateway"));

        let err = Error::from_response(503, b"");
        assert!(err.is_retryable());
        assert!(err.to_string().contains("503"));

        let err = Error::from_response(404, b"Not Found");
        assert!(!err.is_not_found(), "a proxy 404 is not a missing resource");
    }

    #[test]
    fn retry_classification() {
        let rl = Error::from_response(
            429,
            br#"{"message":"slow","code":429,"type":"general_rate_limit_exceeded"}"#,
        );
        assert!(rl.is_retryable());
        assert!(
            Error::from_response(500, br#"{"message":"x","type":"general_unknown"}"#)
                .is_retryable()
        );
        assert!(
            !Error::from_response(501, br#"{"message":"x","type":"general_not_implemented"}"#)
                .is_retryable()
        );
        assert!(
            !Error::from_response(400, br#"{"message":"x","type":"general_argument_invalid"}"#)
                .is_retryable()
        );
        assert!(
            !Error::from_response(401, br#"{"message":"x","type":"user_unauthorized"}"#)
                .is_retryable()
        );
        assert!(Error::Timeout.is_retryable());
        assert!(!Error::InvalidInput("x".into()).is_retryable());
    }
}
