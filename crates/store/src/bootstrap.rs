//! Makes the backend match `schema.rs`, and says how it differs.
//!
//! `plan` reads the backend and compares it with the schema in code, producing a list of
//! changes; `apply` carries them out in order (attributes before the indexes over them, waiting
//! until each is `available`). Only additive changes are made: an attribute or index whose
//! definition differs is reported as drift, never dropped, because dropping loses data.

use std::{collections::BTreeSet, fmt, time::Duration};

use anyhow::Context as _;
use g3_appwrite::{AttributeKind, AttributeSpec, BucketSpec, Client, IndexSpec, Order};

use crate::schema::{self, CollectionSpec, DATABASE_ID, DATABASE_NAME};

/// How long an attribute or index may take to become `available`.
const AVAILABLE_TIMEOUT: Duration = Duration::from_secs(120);

/// One difference between the backend and the schema in code.
#[derive(Debug, Clone)]
pub enum Change {
    CreateDatabase,
    CreateCollection(Box<CollectionSpec>),
    UpdateCollection(Box<CollectionSpec>),
    CreateAttribute {
        collection: &'static str,
        spec: AttributeSpec,
    },
    CreateIndex {
        collection: &'static str,
        spec: IndexSpec,
    },
    CreateTeam {
        id: &'static str,
        name: &'static str,
    },
    CreateBucket(BucketSpec),
    UpdateBucket(BucketSpec),
    /// A difference bootstrap will not repair by itself (it would lose data): a human decides.
    Drift(String),
}

impl Change {
    pub fn is_drift(&self) -> bool {
        matches!(self, Change::Drift(_))
    }
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Change::CreateDatabase => write!(f, "create database {DATABASE_ID}"),
            Change::CreateCollection(c) => write!(
                f,
                "create collection {} ({} attributes, {} indexes)",
                c.id,
                c.attributes.len(),
                c.indexes.len()
            ),
            Change::UpdateCollection(c) => {
                write!(
                    f,
                    "update collection {} permissions / document security",
                    c.id
                )
            }
            Change::CreateAttribute { collection, spec } => {
                write!(
                    f,
                    "create attribute {collection}.{} ({})",
                    spec.key,
                    describe(spec)
                )
            }
            Change::CreateIndex { collection, spec } => write!(
                f,
                "create index {collection}.{} on ({})",
                spec.key,
                spec.attributes.join(", ")
            ),
            Change::CreateTeam { id, .. } => write!(f, "create team {id}"),
            Change::CreateBucket(b) => write!(f, "create bucket {}", b.id),
            Change::UpdateBucket(b) => write!(f, "update bucket {} settings", b.id),
            Change::Drift(what) => write!(f, "DRIFT: {what}"),
        }
    }
}

fn describe(spec: &AttributeSpec) -> String {
    let kind = match &spec.kind {
        AttributeKind::String { size } => format!("string({size})"),
        AttributeKind::Integer { .. } => "integer".into(),
        AttributeKind::Float { .. } => "float".into(),
        AttributeKind::Boolean => "boolean".into(),
        AttributeKind::Datetime => "datetime".into(),
        AttributeKind::Enum { elements } => format!("enum[{}]", elements.join("|")),
    };
    let mut out = kind;
    if spec.array {
        out.push_str("[]");
    }
    if spec.required {
        out.push_str(", required");
    }
    out
}

/// Compares the backend with the schema in code. Reads only.
pub async fn plan(client: &Client) -> anyhow::Result<Vec<Change>> {
    let dbs = client.databases();
    let mut changes = Vec::new();

    let database_exists = match dbs.get(DATABASE_ID).await {
        Ok(_) => true,
        Err(e) if e.is_not_found() => false,
        Err(e) => return Err(e).context("reading database g3"),
    };
    if !database_exists {
        changes.push(Change::CreateDatabase);
    }

    for wanted in schema::collections() {
        let existing = if database_exists {
            match dbs.get_collection(DATABASE_ID, wanted.id).await {
                Ok(c) => Some(c),
                Err(e) if e.is_not_found() => None,
                Err(e) => {
                    return Err(e).with_context(|| format!("reading collection {}", wanted.id));
                }
            }
        } else {
            None
        };
        let Some(existing) = existing else {
            changes.push(Change::CreateCollection(Box::new(wanted)));
            continue;
        };
        if permission_set(&existing.permissions) != permission_set_of(&wanted)
            || existing.document_security != wanted.document_security
        {
            changes.push(Change::UpdateCollection(Box::new(wanted.clone())));
        }
        for spec in &wanted.attributes {
            match existing.attributes.iter().find(|a| a.key == spec.key) {
                None => changes.push(Change::CreateAttribute {
                    collection: wanted.id,
                    spec: spec.clone(),
                }),
                Some(actual) => {
                    if let Some(why) = attribute_mismatch(spec, actual) {
                        changes.push(Change::Drift(format!(
                            "attribute {}.{}: {why}",
                            wanted.id, spec.key
                        )));
                    }
                }
            }
        }
        for actual in &existing.attributes {
            if !wanted.attributes.iter().any(|a| a.key == actual.key) {
                changes.push(Change::Drift(format!(
                    "attribute {}.{} exists in the backend but not in the schema",
                    wanted.id, actual.key
                )));
            }
        }
        for spec in &wanted.indexes {
            match existing.indexes.iter().find(|i| i.key == spec.key) {
                None => changes.push(Change::CreateIndex {
                    collection: wanted.id,
                    spec: spec.clone(),
                }),
                Some(actual) => {
                    if let Some(why) = index_mismatch(spec, actual) {
                        changes.push(Change::Drift(format!(
                            "index {}.{}: {why}",
                            wanted.id, spec.key
                        )));
                    }
                }
            }
        }
    }

    let teams = client.teams();
    for &(id, name) in schema::TEAMS {
        match teams.get(id).await {
            Ok(_) => {}
            Err(e) if e.is_not_found() => changes.push(Change::CreateTeam { id, name }),
            Err(e) => return Err(e).with_context(|| format!("reading team {id}")),
        }
    }

    let storage = client.storage();
    for wanted in schema::buckets() {
        match storage.get_bucket(&wanted.id).await {
            Ok(actual) => {
                let same = permission_set(&actual.permissions)
                    == wanted.permissions.iter().map(ToString::to_string).collect()
                    && actual.file_security == wanted.file_security
                    && Some(actual.maximum_file_size) == wanted.maximum_file_size
                    && actual
                        .allowed_file_extensions
                        .iter()
                        .collect::<BTreeSet<_>>()
                        == wanted.allowed_file_extensions.iter().collect();
                if !same {
                    changes.push(Change::UpdateBucket(wanted));
                }
            }
            Err(e) if e.is_not_found() => changes.push(Change::CreateBucket(wanted)),
            Err(e) => return Err(e).with_context(|| format!("reading bucket {}", wanted.id)),
        }
    }
    Ok(changes)
}

fn permission_set(perms: &[String]) -> BTreeSet<String> {
    perms.iter().cloned().collect()
}

fn permission_set_of(c: &CollectionSpec) -> BTreeSet<String> {
    c.permissions.iter().map(ToString::to_string).collect()
}

/// Why an existing attribute does not match its definition, if it does not.
fn attribute_mismatch(spec: &AttributeSpec, actual: &g3_appwrite::Attribute) -> Option<String> {
    let (want_type, want_size) = match &spec.kind {
        AttributeKind::String { size } => ("string", Some(u64::from(*size))),
        AttributeKind::Enum { .. } => ("string", None),
        AttributeKind::Integer { .. } => ("integer", None),
        AttributeKind::Float { .. } => ("double", None),
        AttributeKind::Boolean => ("boolean", None),
        AttributeKind::Datetime => ("datetime", None),
    };
    if actual.kind != want_type {
        return Some(format!("type is {}, schema says {want_type}", actual.kind));
    }
    if let (Some(want), Some(have)) = (want_size, actual.size)
        && want != have
    {
        return Some(format!("size is {have}, schema says {want}"));
    }
    if let AttributeKind::Enum { elements } = &spec.kind {
        let have: BTreeSet<&String> = actual.elements.iter().flatten().collect();
        if have != elements.iter().collect() {
            return Some(format!(
                "enum elements are {have:?}, schema says {elements:?}"
            ));
        }
    }
    if actual.required != spec.required {
        return Some(format!(
            "required is {}, schema says {}",
            actual.required, spec.required
        ));
    }
    if actual.array.unwrap_or(false) != spec.array {
        return Some(format!(
            "array is {}, schema says {}",
            !spec.array, spec.array
        ));
    }
    None
}

fn index_mismatch(spec: &IndexSpec, actual: &g3_appwrite::Index) -> Option<String> {
    if actual.kind != spec.kind.as_str() {
        return Some(format!(
            "type is {}, schema says {}",
            actual.kind,
            spec.kind.as_str()
        ));
    }
    if actual.attributes != spec.attributes {
        return Some(format!(
            "attributes are {:?}, schema says {:?}",
            actual.attributes, spec.attributes
        ));
    }
    let want: Vec<&str> = spec
        .orders
        .iter()
        .map(|o| match o {
            Order::Asc => "ASC",
            Order::Desc => "DESC",
        })
        .collect();
    let have: Vec<String> = actual
        .orders
        .iter()
        .map(|o| o.clone().unwrap_or_else(|| "ASC".into()).to_uppercase())
        .collect();
    if !have.is_empty() && have != want {
        return Some(format!("orders are {have:?}, schema says {want:?}"));
    }
    None
}

/// Where bootstrap reports what it is doing (stdout for the CLI, the log for devstack).
pub trait Progress {
    fn step(&mut self, message: &str);
}

impl<F: FnMut(&str)> Progress for F {
    fn step(&mut self, message: &str) {
        self(message)
    }
}

/// What one bootstrap run did.
#[derive(Debug, Default)]
pub struct Outcome {
    pub applied: usize,
    pub drift: Vec<String>,
}

/// Brings the backend up to the schema: plans, then applies every non-drift change in order.
/// Safe to re-run; a second run applies nothing.
pub async fn run(client: &Client, progress: &mut dyn Progress) -> anyhow::Result<Outcome> {
    progress.step("reading the backend schema");
    let changes = plan(client).await?;
    let mut outcome = Outcome::default();
    let total = changes.iter().filter(|c| !c.is_drift()).count();
    for change in changes {
        if let Change::Drift(what) = change {
            progress.step(&format!("warning: {what} (left as is)"));
            outcome.drift.push(what);
            continue;
        }
        outcome.applied += 1;
        progress.step(&format!("[{}/{total}] {change}", outcome.applied));
        apply(client, &change)
            .await
            .with_context(|| change.to_string())?;
    }
    Ok(outcome)
}

async fn apply(client: &Client, change: &Change) -> anyhow::Result<()> {
    let dbs = client.databases();
    match change {
        Change::CreateDatabase => ignore_conflict(dbs.create(DATABASE_ID, DATABASE_NAME).await)?,
        Change::CreateCollection(c) => {
            ignore_conflict(
                dbs.create_collection(
                    DATABASE_ID,
                    c.id,
                    c.name,
                    &c.permissions,
                    c.document_security,
                )
                .await,
            )?;
            for spec in &c.attributes {
                create_attribute(client, c.id, spec).await?;
            }
            for spec in &c.indexes {
                create_index(client, c.id, spec).await?;
            }
        }
        Change::UpdateCollection(c) => {
            dbs.update_collection(
                DATABASE_ID,
                c.id,
                c.name,
                &c.permissions,
                c.document_security,
            )
            .await?;
        }
        Change::CreateAttribute { collection, spec } => {
            create_attribute(client, collection, spec).await?
        }
        Change::CreateIndex { collection, spec } => create_index(client, collection, spec).await?,
        Change::CreateTeam { id, name } => ignore_conflict(client.teams().create(*id, name).await)?,
        Change::CreateBucket(b) => ignore_conflict(client.storage().create_bucket(b).await)?,
        Change::UpdateBucket(b) => drop(client.storage().update_bucket(b).await?),
        Change::Drift(_) => {}
    }
    Ok(())
}

async fn create_attribute(
    client: &Client,
    collection: &str,
    spec: &AttributeSpec,
) -> anyhow::Result<()> {
    let dbs = client.databases();
    ignore_conflict(dbs.create_attribute(DATABASE_ID, collection, spec).await)?;
    dbs.wait_attribute_available(DATABASE_ID, collection, &spec.key, AVAILABLE_TIMEOUT)
        .await?;
    Ok(())
}

async fn create_index(client: &Client, collection: &str, spec: &IndexSpec) -> anyhow::Result<()> {
    let dbs = client.databases();
    ignore_conflict(dbs.create_index(DATABASE_ID, collection, spec).await)?;
    dbs.wait_index_available(DATABASE_ID, collection, &spec.key, AVAILABLE_TIMEOUT)
        .await?;
    Ok(())
}

/// A 409 means someone (an earlier, interrupted run) already made it: that is success.
fn ignore_conflict<T>(result: Result<T, g3_appwrite::Error>) -> Result<(), g3_appwrite::Error> {
    match result {
        Ok(_) => Ok(()),
        Err(e) if e.is_conflict() => Ok(()),
        Err(e) => Err(e),
    }
}
