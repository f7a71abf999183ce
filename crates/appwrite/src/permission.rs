//! Permission and role strings: `read("team:paid")`, `update("user:ID")`, `read("any")`.
//! Built from typed parts so a typo cannot silently grant or deny access.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Who a permission is for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Role(String);

impl Role {
    /// Anyone, signed in or not.
    pub fn any() -> Self {
        Self("any".into())
    }
    /// Visitors without a session.
    pub fn guests() -> Self {
        Self("guests".into())
    }
    /// Every signed-in user.
    pub fn users() -> Self {
        Self("users".into())
    }
    /// Every signed-in user with a verified email.
    pub fn users_verified() -> Self {
        Self("users/verified".into())
    }
    pub fn user(id: &str) -> Self {
        Self(format!("user:{id}"))
    }
    pub fn user_verified(id: &str) -> Self {
        Self(format!("user:{id}/verified"))
    }
    /// Every member of a team.
    pub fn team(id: &str) -> Self {
        Self(format!("team:{id}"))
    }
    /// Members of a team holding a team role.
    pub fn team_role(id: &str, role: &str) -> Self {
        Self(format!("team:{id}/{role}"))
    }
    /// One membership.
    pub fn member(membership_id: &str) -> Self {
        Self(format!("member:{membership_id}"))
    }
    /// Users carrying a label.
    pub fn label(label: &str) -> Self {
        Self(format!("label:{label}"))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a permission allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    Read,
    Create,
    Update,
    Delete,
    /// Shorthand for create + update + delete.
    Write,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Read => "read",
            Action::Create => "create",
            Action::Update => "update",
            Action::Delete => "delete",
            Action::Write => "write",
        }
    }
}

/// One permission string, e.g. `read("team:paid")`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Permission {
    pub action: Action,
    pub role: Role,
}

impl Permission {
    pub fn read(role: Role) -> Self {
        Self {
            action: Action::Read,
            role,
        }
    }
    pub fn create(role: Role) -> Self {
        Self {
            action: Action::Create,
            role,
        }
    }
    pub fn update(role: Role) -> Self {
        Self {
            action: Action::Update,
            role,
        }
    }
    pub fn delete(role: Role) -> Self {
        Self {
            action: Action::Delete,
            role,
        }
    }
    pub fn write(role: Role) -> Self {
        Self {
            action: Action::Write,
            role,
        }
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}(\"{}\")", self.action.as_str(), self.role)
    }
}

impl FromStr for Permission {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("not a permission string: {s:?}");
        let (action, rest) = s.split_once('(').ok_or_else(bad)?;
        let role = rest
            .strip_suffix(')')
            .and_then(|r| r.strip_prefix('"'))
            .and_then(|r| r.strip_suffix('"'))
            .ok_or_else(bad)?;
        let action = match action {
            "read" => Action::Read,
            "create" => Action::Create,
            "update" => Action::Update,
            "delete" => Action::Delete,
            "write" => Action::Write,
            _ => return Err(bad()),
        };
        if role.is_empty() {
            return Err(bad());
        }
        Ok(Self {
            action,
            role: Role(role.to_owned()),
        })
    }
}

impl Serialize for Permission {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Permission {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

pub(crate) fn to_strings(permissions: &[Permission]) -> Vec<String> {
    permissions.iter().map(ToString::to_string).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permission_strings() {
        assert_eq!(
            Permission::read(Role::team("paid")).to_string(),
            r#"read("team:paid")"#
        );
        assert_eq!(
            Permission::update(Role::user("u1")).to_string(),
            r#"update("user:u1")"#
        );
        assert_eq!(Permission::read(Role::any()).to_string(), r#"read("any")"#);
        assert_eq!(
            Permission::read(Role::label("admin")).to_string(),
            r#"read("label:admin")"#
        );
        assert_eq!(
            Permission::delete(Role::team_role("staff", "owner")).to_string(),
            r#"delete("team:staff/owner")"#
        );
        assert_eq!(
            Permission::create(Role::users_verified()).to_string(),
            r#"create("users/verified")"#
        );
        assert_eq!(
            Permission::write(Role::user_verified("u")).to_string(),
            r#"write("user:u/verified")"#
        );
        assert_eq!(
            Permission::read(Role::member("m1")).to_string(),
            r#"read("member:m1")"#
        );
        assert_eq!(
            Permission::read(Role::guests()).to_string(),
            r#"read("guests")"#
        );
        assert_eq!(
            Permission::read(Role::users()).to_string(),
            r#"read("users")"#
        );
    }

    #[test]
    fn parses_and_serialises() {
        let p: Permission = r#"read("team:paid")"#.parse().unwrap();
        assert_eq!(p, Permission::read(Role::team("paid")));
        assert!("read(team:paid)".parse::<Permission>().is_err());
        assert!(r#"sing("any")"#.parse::<Permission>().is_err());
        let json = serde_json::to_string(&[p]).unwrap();
        assert_eq!(json, r#"["read(\"team:paid\")"]"#);
        let back: Vec<Permission> = serde_json::from_str(&json).unwrap();
        assert_eq!(back[0].role.as_str(), "team:paid");
    }
}
