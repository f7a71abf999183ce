//! Realtime channel names (Appwrite 1.8), built from parts instead of written out as strings.

use std::fmt;

/// One Realtime channel. `Into<String>` gives the wire name for [`crate::RealtimeOptions`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Channel(String);

impl Channel {
    /// Every document of one collection: `databases.{db}.collections.{col}.documents`.
    pub fn documents(database_id: &str, collection_id: &str) -> Self {
        Self(format!(
            "databases.{database_id}.collections.{collection_id}.documents"
        ))
    }

    /// One document: `databases.{db}.collections.{col}.documents.{id}`.
    pub fn document(database_id: &str, collection_id: &str, document_id: &str) -> Self {
        Self(format!(
            "databases.{database_id}.collections.{collection_id}.documents.{document_id}"
        ))
    }

    /// The signed-in account's own changes.
    pub fn account() -> Self {
        Self("account".to_owned())
    }

    /// Team memberships the session can see.
    pub fn memberships() -> Self {
        Self("memberships".to_owned())
    }

    /// Files of one bucket: `buckets.{id}.files`.
    pub fn files(bucket_id: &str) -> Self {
        Self(format!("buckets.{bucket_id}.files"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<Channel> for String {
    fn from(c: Channel) -> Self {
        c.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_appwrites() {
        assert_eq!(
            Channel::documents("g3", "signals").as_str(),
            "databases.g3.collections.signals.documents"
        );
        assert_eq!(
            Channel::document("g3", "signals", "s1").as_str(),
            "databases.g3.collections.signals.documents.s1"
        );
        assert_eq!(Channel::files("b").as_str(), "buckets.b.files");
        assert_eq!(String::from(Channel::account()), "account");
    }
}
