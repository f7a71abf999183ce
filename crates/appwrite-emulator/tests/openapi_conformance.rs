//! Holds the emulator to Appwrite's official OpenAPI spec (`open-api3-1.8.1-server.json`): every
//! endpoint the product uses is called over HTTP and every JSON body (successes and errors) is
//! validated against the schema the spec gives for that operation and status.
//!
//! Each test collects every disagreement it finds and fails once at the end with the full list,
//! so one run reports all of them (endpoint, expected, got).

use appwrite_emulator::{Config, Handle};
use reqwest::{Method, multipart};
use serde_json::{Value, json};
use testkit::openapi::Spec;

const KEY: &str = "k";
const PROJECT: &str = "p";

#[derive(Clone)]
enum Auth {
    Key,
    Session(String),
    Guest,
    /// Key and session together: Appwrite refuses this.
    Both(String),
    /// The key, but for another project.
    Project(&'static str),
}

/// One request: the spec's path template plus the values of its parameters.
struct Req {
    method: Method,
    template: &'static str,
    params: Vec<(&'static str, String)>,
    query: Vec<(String, String)>,
    body: Option<Value>,
    auth: Auth,
}

impl Req {
    fn new(method: Method, template: &'static str) -> Self {
        Self {
            method,
            template,
            params: Vec::new(),
            query: Vec::new(),
            body: None,
            auth: Auth::Key,
        }
    }
    fn get(template: &'static str) -> Self {
        Self::new(Method::GET, template)
    }
    fn post(template: &'static str) -> Self {
        Self::new(Method::POST, template)
    }
    fn put(template: &'static str) -> Self {
        Self::new(Method::PUT, template)
    }
    fn patch(template: &'static str) -> Self {
        Self::new(Method::PATCH, template)
    }
    fn delete(template: &'static str) -> Self {
        Self::new(Method::DELETE, template)
    }
    fn p(mut self, name: &'static str, value: &str) -> Self {
        self.params.push((name, value.to_owned()));
        self
    }
    fn db(self) -> Self {
        self.p("databaseId", "g3")
    }
    fn col(self, id: &str) -> Self {
        self.db().p("collectionId", id)
    }
    fn q(mut self, query: Value) -> Self {
        self.query.push(("queries[]".into(), query.to_string()));
        self
    }
    fn raw_q(mut self, query: &str) -> Self {
        self.query.push(("queries[]".into(), query.to_owned()));
        self
    }
    fn body(mut self, body: Value) -> Self {
        self.body = Some(body);
        self
    }
    fn auth(mut self, auth: Auth) -> Self {
        self.auth = auth;
        self
    }
    fn path(&self) -> String {
        let mut path = self.template.to_owned();
        for (name, value) in &self.params {
            path = path.replace(&format!("{{{name}}}"), value);
        }
        path
    }
    fn label(&self) -> String {
        format!("{} {}", self.method, self.path())
    }
}

struct Harness {
    _handle: Handle,
    http: reqwest::Client,
    endpoint: String,
    origin: String,
    spec: Spec,
    problems: Vec<String>,
}

impl Harness {
    async fn start() -> Self {
        let handle = appwrite_emulator::spawn(Config::in_memory(PROJECT, KEY))
            .await
            .expect("emulator starts");
        let endpoint = handle.endpoint.clone();
        let origin = format!("http://{}", handle.addr);
        Self {
            _handle: handle,
            http: reqwest::Client::new(),
            endpoint,
            origin,
            spec: Spec::appwrite_server().expect("the Appwrite spec loads"),
            problems: Vec::new(),
        }
    }

    fn headers(&self, rb: reqwest::RequestBuilder, auth: &Auth) -> reqwest::RequestBuilder {
        let rb = rb.header("X-Appwrite-Response-Format", "1.8.0");
        match auth {
            Auth::Key => rb
                .header("X-Appwrite-Project", PROJECT)
                .header("X-Appwrite-Key", KEY),
            Auth::Session(s) => rb
                .header("X-Appwrite-Project", PROJECT)
                .header("X-Appwrite-Session", s),
            Auth::Guest => rb.header("X-Appwrite-Project", PROJECT),
            Auth::Both(s) => rb
                .header("X-Appwrite-Project", PROJECT)
                .header("X-Appwrite-Key", KEY)
                .header("X-Appwrite-Session", s),
            Auth::Project(p) => rb
                .header("X-Appwrite-Project", *p)
                .header("X-Appwrite-Key", KEY),
        }
    }

    async fn send(&self, req: &Req) -> (u16, Value, String) {
        let url = format!("{}{}", self.endpoint, req.path());
        let mut rb = self.http.request(req.method.clone(), url).query(&req.query);
        if let Some(body) = &req.body {
            rb = rb.json(body);
        }
        let res = self
            .headers(rb, &req.auth)
            .send()
            .await
            .expect("request reaches the emulator");
        let status = res.status().as_u16();
        let ctype = res
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let text = res.text().await.expect("response body");
        let json = if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, json, ctype)
    }

    fn problem(&mut self, p: String) {
        eprintln!("DISAGREEMENT: {p}");
        self.problems.push(p);
    }

    /// Sends `req`, expects `status`, validates the body against the spec's response schema.
    async fn ok(&mut self, req: Req, status: u16) -> Value {
        let (got, body, ctype) = self.send(&req).await;
        if got != status {
            self.problem(format!(
                "{}: expected HTTP {status}, got {got}: {body}",
                req.label()
            ));
            return body;
        }
        if status == 204 {
            if !body.is_null() {
                self.problem(format!(
                    "{}: 204 must have no body, got {body}",
                    req.label()
                ));
            }
            return body;
        }
        if !ctype.starts_with("application/json") {
            self.problem(format!(
                "{}: expected Content-Type application/json, got {ctype:?}",
                req.label()
            ));
        }
        if let Err(errors) =
            self.spec
                .check_response(req.method.as_str(), req.template, status, &body)
        {
            self.problem(format!(
                "{} {} {status}: body does not match the spec: {}",
                req.method,
                req.template,
                errors.join("; ")
            ));
        }
        body
    }

    /// Sends `req`, expects an Appwrite error with this status and type, in the spec's error shape.
    async fn err(&mut self, req: Req, status: u16, kind: &str) -> Value {
        let (got, body, _) = self.send(&req).await;
        let got_kind = body.get("type").and_then(Value::as_str).unwrap_or("<none>");
        if got != status || got_kind != kind {
            self.problem(format!(
                "{}: expected {status} {kind}, got {got} {got_kind}: {body}",
                req.label()
            ));
        }
        self.check_error_body(&req.label(), got, &body);
        body
    }

    fn check_error_body(&mut self, label: &str, status: u16, body: &Value) {
        // The spec's `error` model types `code` as a string, but Appwrite sends the HTTP status
        // as a JSON number (and the SDKs read it as one): hold the emulator to what Appwrite
        // sends for `code`, and to the spec for everything else.
        match body.get("code") {
            Some(code) if code.as_u64() == Some(u64::from(status)) => {}
            other => self.problem(format!(
                "{label}: error.code must be the number {status}, got {other:?}"
            )),
        }
        let mut as_spec = body.clone();
        if let Some(code) = as_spec.get_mut("code") {
            *code = Value::String(code.to_string());
        }
        if let Err(errors) = self.spec.check("error", &as_spec) {
            self.problem(format!(
                "{label}: error body does not match the spec: {}",
                errors.join("; ")
            ));
        }
    }

    fn finish(self, what: &str) {
        assert!(
            self.problems.is_empty(),
            "{what}: {} disagreement(s) with Appwrite's 1.8.1 OpenAPI spec:\n  - {}",
            self.problems.len(),
            self.problems.join("\n  - ")
        );
    }

    /// Polls `GET .../attributes/{key}` (bounded) until the attribute is available.
    async fn wait_attribute(&mut self, collection: &str, key: &str) {
        let req = || {
            Req::get("/databases/{databaseId}/collections/{collectionId}/attributes/{key}")
                .col(collection)
                .p("key", key)
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let (status, body, _) = self.send(&req()).await;
            if status == 200 && body["status"] == "available" {
                self.ok(req(), 200).await;
                return;
            }
            if std::time::Instant::now() > deadline {
                self.problem(format!(
                    "attribute {collection}.{key} never became available: {status} {body}"
                ));
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    async fn session(&mut self, email: &str, password: &str) -> String {
        let s = self
            .ok(
                Req::post("/account/sessions/email")
                    .body(json!({ "email": email, "password": password })),
                201,
            )
            .await;
        s["secret"].as_str().unwrap_or_default().to_owned()
    }

    async fn mailbox_latest(&mut self, to: &str) -> Value {
        let url = format!("{}/mailbox/api/messages", self.origin);
        let res = self
            .http
            .get(url)
            .query(&[("to", to)])
            .send()
            .await
            .expect("mailbox answers");
        let body: Value = res.json().await.unwrap_or(Value::Null);
        let list = if body.is_array() {
            body
        } else {
            body["messages"].clone()
        };
        // The newest message: the highest id (the list order is not part of the contract).
        list.as_array()
            .and_then(|l| {
                l.iter()
                    .max_by_key(|m| m["id"].as_i64().unwrap_or(0))
                    .cloned()
            })
            .unwrap_or(Value::Null)
    }
}

fn attr(key: &str) -> Value {
    json!({ "key": key, "required": false })
}

fn query(method: &str, attribute: &str, values: Value) -> Value {
    json!({ "method": method, "attribute": attribute, "values": values })
}

#[tokio::test]
async fn databases_collections_attributes_indexes_match_the_spec() {
    let mut h = Harness::start().await;

    h.ok(
        Req::post("/databases").body(json!({ "databaseId": "g3", "name": "G3" })),
        201,
    )
    .await;
    h.ok(Req::get("/databases/{databaseId}").db(), 200).await;
    h.err(
        Req::post("/databases").body(json!({ "databaseId": "g3", "name": "G3" })),
        409,
        "database_already_exists",
    )
    .await;
    h.err(
        Req::get("/databases/{databaseId}").p("databaseId", "nope"),
        404,
        "database_not_found",
    )
    .await;

    h.ok(
        Req::post("/databases/{databaseId}/collections").db().body(json!({
            "collectionId": "signals", "name": "Signals",
            "permissions": ["read(\"team:paid\")", "read(\"team:staff\")"], "documentSecurity": false
        })),
        201,
    )
    .await;
    h.ok(
        Req::get("/databases/{databaseId}/collections/{collectionId}").col("signals"),
        200,
    )
    .await;
    h.ok(
        Req::put("/databases/{databaseId}/collections/{collectionId}")
            .col("signals")
            .body(json!({ "name": "Signals", "permissions": ["read(\"team:paid\")"], "documentSecurity": true })),
        200,
    )
    .await;
    h.err(
        Req::get("/databases/{databaseId}/collections/{collectionId}").col("nope"),
        404,
        "collection_not_found",
    )
    .await;

    let attrs: [(&'static str, Value); 11] = [
        (
            "/databases/{databaseId}/collections/{collectionId}/attributes/string",
            json!({ "key": "pair", "size": 32, "required": true }),
        ),
        (
            "/databases/{databaseId}/collections/{collectionId}/attributes/string",
            json!({ "key": "tags", "size": 16, "required": false, "array": true }),
        ),
        (
            "/databases/{databaseId}/collections/{collectionId}/attributes/integer",
            json!({ "key": "revision", "required": false, "min": 0, "max": 1000, "default": 0 }),
        ),
        (
            "/databases/{databaseId}/collections/{collectionId}/attributes/integer",
            json!({ "key": "levels", "required": false, "array": true }),
        ),
        (
            "/databases/{databaseId}/collections/{collectionId}/attributes/float",
            attr("stop"),
        ),
        (
            "/databases/{databaseId}/collections/{collectionId}/attributes/float",
            json!({ "key": "targets", "required": false, "array": true }),
        ),
        (
            "/databases/{databaseId}/collections/{collectionId}/attributes/boolean",
            json!({ "key": "premium", "required": false, "default": false }),
        ),
        (
            "/databases/{databaseId}/collections/{collectionId}/attributes/datetime",
            attr("postedAt"),
        ),
        (
            "/databases/{databaseId}/collections/{collectionId}/attributes/datetime",
            json!({ "key": "seenAt", "required": false, "array": true }),
        ),
        (
            "/databases/{databaseId}/collections/{collectionId}/attributes/enum",
            json!({ "key": "side", "elements": ["long", "short"], "required": false }),
        ),
        (
            "/databases/{databaseId}/collections/{collectionId}/attributes/enum",
            json!({ "key": "markets", "elements": ["spot", "futures"], "required": false, "array": true }),
        ),
    ];
    for (template, body) in &attrs {
        h.ok(Req::post(template).col("signals").body(body.clone()), 202)
            .await;
    }
    for (_, body) in &attrs {
        let key = body["key"].as_str().unwrap_or_default().to_owned();
        h.wait_attribute("signals", &key).await;
    }
    let list = h
        .ok(
            Req::get("/databases/{databaseId}/collections/{collectionId}/attributes")
                .col("signals"),
            200,
        )
        .await;
    if list["total"] != json!(attrs.len()) {
        h.problem(format!(
            "GET .../attributes: expected total {}, got {}",
            attrs.len(),
            list["total"]
        ));
    }
    h.err(
        Req::post("/databases/{databaseId}/collections/{collectionId}/attributes/string")
            .col("signals")
            .body(json!({ "key": "pair", "size": 8, "required": false })),
        409,
        "attribute_already_exists",
    )
    .await;
    h.err(
        Req::get("/databases/{databaseId}/collections/{collectionId}/attributes/{key}")
            .col("signals")
            .p("key", "nope"),
        404,
        "attribute_not_found",
    )
    .await;

    h.ok(
        Req::post("/databases/{databaseId}/collections/{collectionId}/indexes")
            .col("signals")
            .body(json!({ "key": "by_posted", "type": "key", "attributes": ["postedAt"], "orders": ["DESC"] })),
        202,
    )
    .await;
    h.ok(
        Req::post("/databases/{databaseId}/collections/{collectionId}/indexes")
            .col("signals")
            .body(json!({ "key": "uniq_pair", "type": "unique", "attributes": ["pair"] })),
        202,
    )
    .await;
    h.ok(
        Req::get("/databases/{databaseId}/collections/{collectionId}/indexes").col("signals"),
        200,
    )
    .await;
    h.err(
        Req::post("/databases/{databaseId}/collections/{collectionId}/indexes")
            .col("signals")
            .body(json!({ "key": "by_posted", "type": "key", "attributes": ["pair"] })),
        409,
        "index_already_exists",
    )
    .await;
    // The collection model embeds its attributes and indexes.
    h.ok(
        Req::get("/databases/{databaseId}/collections/{collectionId}").col("signals"),
        200,
    )
    .await;

    // Lists, reads and deletes of schema objects.
    h.ok(Req::get("/databases"), 200).await;
    h.ok(Req::get("/databases/{databaseId}/collections").db(), 200)
        .await;
    const INDEX: &str = "/databases/{databaseId}/collections/{collectionId}/indexes/{key}";
    h.ok(Req::get(INDEX).col("signals").p("key", "by_posted"), 200)
        .await;
    h.err(
        Req::get(INDEX).col("signals").p("key", "nope"),
        404,
        "index_not_found",
    )
    .await;
    h.ok(Req::delete(INDEX).col("signals").p("key", "by_posted"), 204)
        .await;
    h.ok(
        Req::delete("/databases/{databaseId}/collections/{collectionId}/attributes/{key}")
            .col("signals")
            .p("key", "levels"),
        204,
    )
    .await;
    h.ok(
        Req::delete("/databases/{databaseId}/collections/{collectionId}").col("signals"),
        204,
    )
    .await;
    h.err(
        Req::get("/databases/{databaseId}/collections/{collectionId}").col("signals"),
        404,
        "collection_not_found",
    )
    .await;

    h.finish("databases/collections/attributes/indexes");
}

#[tokio::test]
async fn documents_and_queries_match_the_spec() {
    let mut h = Harness::start().await;
    h.ok(
        Req::post("/databases").body(json!({ "databaseId": "g3", "name": "G3" })),
        201,
    )
    .await;
    h.ok(
        Req::post("/databases/{databaseId}/collections")
            .db()
            .body(json!({ "collectionId": "signals", "name": "Signals", "permissions": [], "documentSecurity": true })),
        201,
    )
    .await;
    for (template, body) in [
        (
            "/databases/{databaseId}/collections/{collectionId}/attributes/string",
            json!({ "key": "pair", "size": 16, "required": true }),
        ),
        (
            "/databases/{databaseId}/collections/{collectionId}/attributes/integer",
            json!({ "key": "revision", "required": false, "default": 0 }),
        ),
        (
            "/databases/{databaseId}/collections/{collectionId}/attributes/float",
            json!({ "key": "targets", "required": false, "array": true }),
        ),
        (
            "/databases/{databaseId}/collections/{collectionId}/attributes/datetime",
            attr("postedAt"),
        ),
        (
            "/databases/{databaseId}/collections/{collectionId}/attributes/string",
            json!({ "key": "note", "size": 32, "required": false }),
        ),
    ] {
        let key = body["key"].as_str().unwrap_or_default().to_owned();
        h.ok(Req::post(template).col("signals").body(body), 202)
            .await;
        h.wait_attribute("signals", &key).await;
    }

    const DOCS: &str = "/databases/{databaseId}/collections/{collectionId}/documents";
    const DOC: &str = "/databases/{databaseId}/collections/{collectionId}/documents/{documentId}";
    for (i, id) in ["d1", "d2", "d3", "d4"].iter().enumerate() {
        let doc = h
            .ok(
                Req::post(DOCS).col("signals").body(json!({
                    "documentId": id,
                    "data": { "pair": format!("P{i}"), "revision": i, "targets": [1.5, 2.5],
                              "postedAt": format!("2024-05-0{}T12:00:00.000+00:00", i + 1),
                              "note": if i % 2 == 0 { Value::Null } else { json!("n") } },
                    "permissions": ["read(\"any\")"]
                })),
                201,
            )
            .await;
        if doc["$sequence"].as_i64().is_none() {
            h.problem(format!(
                "POST {DOCS}: $sequence must be an integer, got {}",
                doc["$sequence"]
            ));
        }
    }
    let unique = h
        .ok(
            Req::post(DOCS)
                .col("signals")
                .body(json!({ "documentId": "unique()", "data": { "pair": "U" } })),
            201,
        )
        .await;
    let unique_id = unique["$id"].as_str().unwrap_or("unique()").to_owned();
    if unique_id == "unique()" {
        h.problem(format!(
            "POST {DOCS} with documentId unique(): no server id in {unique}"
        ));
    }
    h.ok(
        Req::delete(DOC).col("signals").p("documentId", &unique_id),
        204,
    )
    .await;
    h.ok(Req::get(DOC).col("signals").p("documentId", "d1"), 200)
        .await;
    h.ok(
        Req::patch(DOC)
            .col("signals")
            .p("documentId", "d1")
            .body(json!({ "data": { "revision": 7 } })),
        200,
    )
    .await;
    h.ok(
        Req::put(DOC)
            .col("signals")
            .p("documentId", "up1")
            .body(json!({ "data": { "pair": "UP" } })),
        201,
    )
    .await;
    h.ok(
        Req::put(DOC)
            .col("signals")
            .p("documentId", "up1")
            .body(json!({ "data": { "pair": "UP", "revision": 2 } })),
        201,
    )
    .await;
    h.ok(Req::delete(DOC).col("signals").p("documentId", "up1"), 204)
        .await;

    // Lists, with every query the product uses.
    let list = |queries: Vec<Value>| {
        let mut req = Req::get(DOCS).col("signals");
        for q in queries {
            req = req.q(q);
        }
        req
    };
    let cases: Vec<(Vec<Value>, Vec<&str>)> = vec![
        (vec![], vec!["d1", "d2", "d3", "d4"]),
        (vec![query("equal", "pair", json!(["P1"]))], vec!["d2"]),
        (
            vec![
                query("notEqual", "pair", json!(["P1"])),
                query("startsWith", "pair", json!(["P"])),
            ],
            vec!["d1", "d3", "d4"],
        ),
        (
            vec![query(
                "lessThan",
                "postedAt",
                json!(["2024-05-03T00:00:00.000+00:00"]),
            )],
            vec!["d1", "d2"],
        ),
        (
            vec![query("greaterThanEqual", "revision", json!([3]))],
            vec!["d1", "d4"],
        ),
        (
            vec![query("between", "revision", json!([1, 2]))],
            vec!["d2", "d3"],
        ),
        (
            vec![
                query("isNull", "note", json!([])),
                query("startsWith", "pair", json!(["P"])),
            ],
            vec!["d1", "d3"],
        ),
        (
            vec![query("isNotNull", "note", json!([]))],
            vec!["d2", "d4"],
        ),
        (
            vec![
                json!({ "method": "orderDesc", "attribute": "postedAt" }),
                json!({ "method": "limit", "values": [2] }),
            ],
            vec!["d4", "d3"],
        ),
        (
            vec![
                json!({ "method": "orderAsc", "attribute": "postedAt" }),
                json!({ "method": "cursorAfter", "values": ["d2"] }),
                json!({ "method": "limit", "values": [1] }),
            ],
            vec!["d3"],
        ),
        (
            vec![
                json!({ "method": "orderAsc", "attribute": "postedAt" }),
                json!({ "method": "cursorBefore", "values": ["d3"] }),
            ],
            vec!["d1", "d2"],
        ),
        (
            vec![
                json!({ "method": "orderAsc", "attribute": "postedAt" }),
                json!({ "method": "offset", "values": [1] }),
                json!({ "method": "limit", "values": [2] }),
            ],
            vec!["d2", "d3"],
        ),
    ];
    for (queries, expected) in cases {
        let label = format!("GET {DOCS} queries={}", Value::Array(queries.clone()));
        let body = h.ok(list(queries), 200).await;
        let got: Vec<&str> = body["documents"]
            .as_array()
            .map(|docs| docs.iter().filter_map(|d| d["$id"].as_str()).collect())
            .unwrap_or_default();
        if got != expected {
            h.problem(format!("{label}: expected {expected:?}, got {got:?}"));
        }
    }
    let selected = h
        .ok(
            list(vec![
                json!({ "method": "select", "values": ["pair"] }),
                query("equal", "pair", json!(["P1"])),
            ]),
            200,
        )
        .await;
    if selected["documents"][0].get("revision").is_some() {
        h.problem(format!(
            "GET {DOCS} with select([pair]): unselected attribute revision returned: {selected}"
        ));
    }

    // Errors.
    h.err(
        Req::get(DOC).col("signals").p("documentId", "nope"),
        404,
        "document_not_found",
    )
    .await;
    h.err(
        Req::delete(DOC).col("signals").p("documentId", "nope"),
        404,
        "document_not_found",
    )
    .await;
    h.err(
        Req::post(DOCS)
            .col("signals")
            .body(json!({ "documentId": "d1", "data": { "pair": "X" } })),
        409,
        "document_already_exists",
    )
    .await;
    for data in [
        json!({ "pair": "X", "nope": 1 }),
        json!({ "pair": "X", "revision": "seven" }),
        json!({ "pair": "X".repeat(17) }),
        json!({ "revision": 1 }),
    ] {
        h.err(
            Req::post(DOCS)
                .col("signals")
                .body(json!({ "documentId": "bad", "data": data })),
            400,
            "document_invalid_structure",
        )
        .await;
    }
    h.err(
        Req::get(DOC).col("signals").p("documentId", "bad"),
        404,
        "document_not_found",
    )
    .await;
    h.err(
        Req::patch(DOC)
            .col("signals")
            .p("documentId", "d1")
            .body(json!({ "data": { "revision": "x" } })),
        400,
        "document_invalid_structure",
    )
    .await;
    let d1 = h
        .ok(Req::get(DOC).col("signals").p("documentId", "d1"), 200)
        .await;
    if d1["revision"] != json!(7) {
        h.problem(format!(
            "a rejected PATCH changed the document: revision is {}",
            d1["revision"]
        ));
    }
    h.err(
        list(vec![query("equal", "nope", json!(["x"]))]),
        400,
        "general_query_invalid",
    )
    .await;
    h.err(
        Req::get(DOCS).col("signals").raw_q("{not json"),
        400,
        "general_query_invalid",
    )
    .await;
    h.err(
        list(vec![
            json!({ "method": "cursorAfter", "values": ["missing"] }),
        ]),
        400,
        "general_cursor_not_found",
    )
    .await;
    h.err(Req::get(DOCS).col("nope"), 404, "collection_not_found")
        .await;
    h.err(
        Req::get(DOCS)
            .p("databaseId", "nope")
            .p("collectionId", "signals"),
        404,
        "database_not_found",
    )
    .await;
    h.err(
        Req::post(DOCS)
            .col("signals")
            .body(json!({ "documentId": "_bad", "data": { "pair": "X" } })),
        400,
        "general_argument_invalid",
    )
    .await;

    h.finish("documents/queries");
}

#[tokio::test]
async fn users_account_and_auth_errors_match_the_spec() {
    let mut h = Harness::start().await;
    h.ok(
        Req::post("/users").body(json!({
            "userId": "alice", "email": "Alice@Example.com", "password": "correct-horse-1", "name": "Alice"
        })),
        201,
    )
    .await;
    h.ok(
        Req::post("/users").body(json!({ "userId": "unique()", "email": "b@example.com" })),
        201,
    )
    .await;
    h.err(
        Req::post("/users").body(json!({ "userId": "alice2", "email": "alice@example.com" })),
        409,
        "user_already_exists",
    )
    .await;
    h.err(
        Req::post("/users").body(json!({ "userId": "_bad", "email": "c@example.com" })),
        400,
        "general_argument_invalid",
    )
    .await;
    h.ok(Req::get("/users/{userId}").p("userId", "alice"), 200)
        .await;
    h.err(
        Req::get("/users/{userId}").p("userId", "nobody"),
        404,
        "user_not_found",
    )
    .await;
    let found = h
        .ok(
            Req::get("/users").q(query("equal", "email", json!(["alice@example.com"]))),
            200,
        )
        .await;
    if found["total"] != json!(1) {
        h.problem(format!(
            "GET /users?queries[]=equal(email): expected total 1, got {found}"
        ));
    }
    h.ok(
        Req::patch("/users/{userId}/prefs")
            .p("userId", "alice")
            .body(json!({ "prefs": { "theme": "dark" } })),
        200,
    )
    .await;
    h.ok(Req::get("/users/{userId}/prefs").p("userId", "alice"), 200)
        .await;
    h.ok(
        Req::put("/users/{userId}/labels")
            .p("userId", "alice")
            .body(json!({ "labels": ["admin"] })),
        200,
    )
    .await;
    h.ok(
        Req::patch("/users/{userId}/verification")
            .p("userId", "alice")
            .body(json!({ "emailVerification": false })),
        200,
    )
    .await;
    h.ok(
        Req::get("/users/{userId}/memberships").p("userId", "alice"),
        200,
    )
    .await;

    // Account, through a server-side session.
    let secret = h.session("alice@example.com", "correct-horse-1").await;
    h.err(
        Req::post("/account/sessions/email")
            .body(json!({ "email": "alice@example.com", "password": "nope-nope-nope" })),
        401,
        "user_invalid_credentials",
    )
    .await;
    let me = Auth::Session(secret.clone());
    h.ok(Req::get("/account").auth(me.clone()), 200).await;
    h.ok(
        Req::post("/account/verifications/email")
            .auth(me.clone())
            .body(json!({ "url": "http://localhost/verify" })),
        201,
    )
    .await;
    let mail = h.mailbox_latest("alice@example.com").await;
    let (uid, vsecret) = (
        mail["data"]["userId"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        mail["data"]["secret"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    );
    if uid != "alice" || vsecret.is_empty() {
        h.problem(format!(
            "mailbox: verification mail lacks data.userId/data.secret: {mail}"
        ));
    }
    h.err(
        Req::put("/account/verifications/email")
            .auth(me.clone())
            .body(json!({ "userId": "alice", "secret": "wrong" })),
        401,
        "user_invalid_token",
    )
    .await;
    h.ok(
        Req::put("/account/verifications/email")
            .auth(me.clone())
            .body(json!({ "userId": uid, "secret": vsecret })),
        200,
    )
    .await;
    // The 1.7-era path (`/account/verification`) that our README names stays an alias in 1.8.
    let legacy = Req::post("/account/verification")
        .auth(me.clone())
        .body(json!({ "url": "http://localhost/verify" }));
    let (status, body, _) = h.send(&legacy).await;
    if status != 201 {
        h.problem(format!(
            "POST /account/verification (1.8 alias of /account/verifications/email): expected 201, got {status}: {body}"
        ));
    }

    // The same alias for confirming.
    let mail = h.mailbox_latest("alice@example.com").await;
    let vsecret = mail["data"]["secret"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let confirm = Req::put("/account/verification")
        .auth(me.clone())
        .body(json!({ "userId": "alice", "secret": vsecret }));
    let (status, body, _) = h.send(&confirm).await;
    if status != 200 {
        h.problem(format!(
            "PUT /account/verification (1.8 alias of /account/verifications/email): expected 200, got {status}: {body}"
        ));
    }

    // Sessions and passwords.
    h.ok(Req::get("/account/sessions").auth(me.clone()), 200)
        .await;
    h.ok(
        Req::get("/users/{userId}/sessions").p("userId", "alice"),
        200,
    )
    .await;
    h.ok(
        Req::patch("/account/password")
            .auth(me.clone())
            .body(json!({ "password": "correct-horse-2", "oldPassword": "correct-horse-1" })),
        200,
    )
    .await;
    h.err(
        Req::patch("/account/password")
            .auth(me.clone())
            .body(json!({ "password": "correct-horse-3", "oldPassword": "wrong-wrong" })),
        401,
        "user_invalid_credentials",
    )
    .await;
    h.ok(
        Req::patch("/users/{userId}/password")
            .p("userId", "alice")
            .body(json!({ "password": "correct-horse-1" })),
        200,
    )
    .await;
    let spare = h.session("alice@example.com", "correct-horse-1").await;
    let sessions = h
        .ok(
            Req::get("/account/sessions").auth(Auth::Session(spare.clone())),
            200,
        )
        .await;
    let current = sessions["sessions"]
        .as_array()
        .and_then(|l| l.iter().find(|s| s["current"] == json!(true)))
        .and_then(|s| s["$id"].as_str())
        .unwrap_or("missing")
        .to_owned();
    h.ok(
        Req::delete("/users/{userId}/sessions/{sessionId}")
            .p("userId", "alice")
            .p("sessionId", &current),
        204,
    )
    .await;
    h.err(
        Req::get("/account").auth(Auth::Session(spare)),
        401,
        "general_unauthorized_scope",
    )
    .await;

    // Password recovery.
    h.ok(
        Req::post("/account/recovery")
            .body(json!({ "email": "alice@example.com", "url": "http://localhost/reset" })),
        201,
    )
    .await;
    let mail = h.mailbox_latest("alice@example.com").await;
    let rsecret = mail["data"]["secret"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    h.err(
        Req::put("/account/recovery")
            .body(json!({ "userId": "alice", "secret": "wrong", "password": "recovered-1" })),
        401,
        "user_invalid_token",
    )
    .await;
    h.ok(
        Req::put("/account/recovery")
            .body(json!({ "userId": "alice", "secret": rsecret, "password": "correct-horse-1" })),
        200,
    )
    .await;

    // Email one-time code.
    h.ok(
        Req::post("/account/tokens/email")
            .body(json!({ "userId": "unique()", "email": "alice@example.com" })),
        201,
    )
    .await;
    let mail = h.mailbox_latest("alice@example.com").await;
    let code = mail["data"]["secret"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    h.err(
        Req::post("/account/sessions/token")
            .body(json!({ "userId": "alice", "secret": "not-the-code" })),
        401,
        "user_invalid_token",
    )
    .await;
    h.ok(
        Req::post("/account/sessions/token").body(json!({ "userId": "alice", "secret": code })),
        201,
    )
    .await;

    // Auth errors.
    h.err(
        Req::get("/users").auth(Auth::Guest),
        401,
        "general_unauthorized_scope",
    )
    .await;
    h.err(
        Req::get("/users").auth(me.clone()),
        401,
        "general_unauthorized_scope",
    )
    .await;
    h.err(
        Req::get("/account").auth(Auth::Guest),
        401,
        "general_unauthorized_scope",
    )
    .await;
    h.err(
        Req::get("/users").auth(Auth::Both(secret.clone())),
        403,
        "user_key_and_session_set",
    )
    .await;
    h.err(
        Req::get("/users").auth(Auth::Project("other")),
        404,
        "project_not_found",
    )
    .await;
    h.err(Req::get("/nothing/here"), 404, "general_route_not_found")
        .await;
    let res = h
        .http
        .get(format!("{}/users", h.endpoint))
        .header("X-Appwrite-Project", PROJECT)
        .header("X-Appwrite-Key", "wrong-key")
        .send()
        .await
        .expect("request");
    let status = res.status().as_u16();
    let body = res.json::<Value>().await.unwrap_or(Value::Null);
    if status != 401 || body["type"] != "user_unauthorized" {
        h.problem(format!(
            "GET /users with an unknown API key: expected 401 user_unauthorized, got {status} {}",
            body["type"]
        ));
    }
    h.check_error_body("GET /users (unknown key)", status, &body);

    h.ok(
        Req::delete("/account/sessions/{sessionId}")
            .p("sessionId", "current")
            .auth(me.clone()),
        204,
    )
    .await;
    h.err(
        Req::get("/account").auth(me),
        401,
        "general_unauthorized_scope",
    )
    .await;

    let other = h.session("alice@example.com", "correct-horse-1").await;
    h.ok(
        Req::delete("/account/sessions").auth(Auth::Session(other.clone())),
        204,
    )
    .await;
    h.err(
        Req::get("/account").auth(Auth::Session(other)),
        401,
        "general_unauthorized_scope",
    )
    .await;

    h.ok(Req::delete("/users/{userId}").p("userId", "alice"), 204)
        .await;
    h.err(
        Req::get("/users/{userId}").p("userId", "alice"),
        404,
        "user_not_found",
    )
    .await;

    h.finish("users/account");
}

#[tokio::test]
async fn teams_and_memberships_match_the_spec() {
    let mut h = Harness::start().await;
    h.ok(
        Req::post("/users").body(json!({ "userId": "frank", "email": "frank@example.com", "password": "correct-horse-1" })),
        201,
    )
    .await;
    h.ok(
        Req::post("/teams").body(json!({ "teamId": "paid", "name": "Paid" })),
        201,
    )
    .await;
    h.ok(Req::get("/teams/{teamId}").p("teamId", "paid"), 200)
        .await;
    h.err(
        Req::get("/teams/{teamId}").p("teamId", "nope"),
        404,
        "team_not_found",
    )
    .await;
    let m = h
        .ok(
            Req::post("/teams/{teamId}/memberships")
                .p("teamId", "paid")
                .body(json!({ "userId": "frank", "roles": [] })),
            201,
        )
        .await;
    if m["confirm"] != json!(true) {
        h.problem(format!(
            "POST /teams/paid/memberships with the key: expected confirm=true, got {m}"
        ));
    }
    h.err(
        Req::post("/teams/{teamId}/memberships")
            .p("teamId", "paid")
            .body(json!({ "userId": "frank", "roles": [] })),
        409,
        "team_invite_already_exists",
    )
    .await;
    let list = h
        .ok(
            Req::get("/teams/{teamId}/memberships")
                .p("teamId", "paid")
                .q(query("equal", "userId", json!(["frank"]))),
            200,
        )
        .await;
    if list["total"] != json!(1) {
        h.problem(format!(
            "GET /teams/paid/memberships?equal(userId): expected total 1, got {list}"
        ));
    }
    h.ok(
        Req::get("/users/{userId}/memberships").p("userId", "frank"),
        200,
    )
    .await;
    let mid = m["$id"].as_str().unwrap_or("missing").to_owned();
    h.ok(
        Req::delete("/teams/{teamId}/memberships/{membershipId}")
            .p("teamId", "paid")
            .p("membershipId", &mid),
        204,
    )
    .await;
    h.err(
        Req::delete("/teams/{teamId}/memberships/{membershipId}")
            .p("teamId", "paid")
            .p("membershipId", &mid),
        404,
        "membership_not_found",
    )
    .await;

    // Team-based read permission, seen by a session user.
    h.ok(
        Req::post("/databases").body(json!({ "databaseId": "g3", "name": "G3" })),
        201,
    )
    .await;
    h.ok(
        Req::post("/databases/{databaseId}/collections")
            .db()
            .body(json!({
                "collectionId": "signals", "name": "Signals",
                "permissions": ["read(\"team:paid\")"], "documentSecurity": false
            })),
        201,
    )
    .await;
    h.ok(
        Req::post("/databases/{databaseId}/collections/{collectionId}/attributes/string")
            .col("signals")
            .body(json!({ "key": "pair", "size": 16, "required": true })),
        202,
    )
    .await;
    h.wait_attribute("signals", "pair").await;
    const DOCS: &str = "/databases/{databaseId}/collections/{collectionId}/documents";
    const DOC: &str = "/databases/{databaseId}/collections/{collectionId}/documents/{documentId}";
    h.ok(
        Req::post(DOCS)
            .col("signals")
            .body(json!({ "documentId": "s1", "data": { "pair": "BTC" } })),
        201,
    )
    .await;
    let secret = h.session("frank@example.com", "correct-horse-1").await;
    let frank = Auth::Session(secret);
    h.err(
        Req::get(DOCS).col("signals").auth(frank.clone()),
        401,
        "user_unauthorized",
    )
    .await;
    h.err(
        Req::get(DOC)
            .col("signals")
            .p("documentId", "s1")
            .auth(frank.clone()),
        404,
        "document_not_found",
    )
    .await;
    h.ok(
        Req::post("/teams/{teamId}/memberships")
            .p("teamId", "paid")
            .body(json!({ "userId": "frank", "roles": [] })),
        201,
    )
    .await;
    h.ok(Req::get(DOCS).col("signals").auth(frank.clone()), 200)
        .await;
    h.ok(
        Req::get(DOC)
            .col("signals")
            .p("documentId", "s1")
            .auth(frank.clone()),
        200,
    )
    .await;
    h.err(
        Req::post(DOCS)
            .col("signals")
            .auth(frank)
            .body(json!({ "documentId": "s2", "data": { "pair": "ETH" } })),
        401,
        "user_unauthorized",
    )
    .await;

    h.finish("teams");
}

#[tokio::test]
async fn storage_matches_the_spec() {
    let mut h = Harness::start().await;
    h.ok(
        Req::post("/storage/buckets").body(json!({
            "bucketId": "assets", "name": "Assets", "permissions": ["read(\"team:paid\")"],
            "fileSecurity": false, "maximumFileSize": 16_777_216, "allowedFileExtensions": ["txt", "bin"]
        })),
        201,
    )
    .await;
    h.ok(
        Req::get("/storage/buckets/{bucketId}").p("bucketId", "assets"),
        200,
    )
    .await;
    h.err(
        Req::get("/storage/buckets/{bucketId}").p("bucketId", "nope"),
        404,
        "storage_bucket_not_found",
    )
    .await;
    h.ok(
        Req::post("/storage/buckets").body(json!({
            "bucketId": "tiny", "name": "Tiny", "maximumFileSize": 1024, "allowedFileExtensions": ["png"]
        })),
        201,
    )
    .await;

    const FILES: &str = "/storage/buckets/{bucketId}/files";
    const FILE: &str = "/storage/buckets/{bucketId}/files/{fileId}";
    let upload = |id: &str, name: &str, bytes: Vec<u8>| {
        multipart::Form::new().text("fileId", id.to_owned()).part(
            "file",
            multipart::Part::bytes(bytes).file_name(name.to_owned()),
        )
    };
    let endpoint = h.endpoint.clone();
    let url = |path: String| format!("{endpoint}{path}");

    // Small upload.
    let res = h
        .http
        .post(url("/storage/buckets/assets/files".into()))
        .header("X-Appwrite-Project", PROJECT)
        .header("X-Appwrite-Key", KEY)
        .multipart(upload("hello", "hello.txt", b"hello, signals!\n".to_vec()))
        .send()
        .await
        .expect("upload");
    let status = res.status().as_u16();
    let body: Value = res.json().await.unwrap_or(Value::Null);
    if status != 201 {
        h.problem(format!(
            "POST {FILES} (multipart): expected 201, got {status}: {body}"
        ));
    } else if let Err(e) = h.spec.check_response("POST", FILES, 201, &body) {
        h.problem(format!(
            "POST {FILES} 201: body does not match the spec: {}",
            e.join("; ")
        ));
    }

    // Chunked upload: 5 MiB chunks with Content-Range, x-appwrite-id after the first.
    const CHUNK: usize = 5 * 1024 * 1024;
    let size = CHUNK * 2 + 1000;
    let bytes: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
    let mut file_id = "big".to_owned();
    let mut last = Value::Null;
    for (n, start) in (0..size).step_by(CHUNK).enumerate() {
        let end = (start + CHUNK).min(size);
        let mut rb = h
            .http
            .post(url("/storage/buckets/assets/files".into()))
            .header("X-Appwrite-Project", PROJECT)
            .header("X-Appwrite-Key", KEY)
            .header("Content-Range", format!("bytes {start}-{}/{size}", end - 1));
        if n > 0 {
            rb = rb.header("x-appwrite-id", file_id.clone());
        }
        let res = rb
            .multipart(upload("big", "big.bin", bytes[start..end].to_vec()))
            .send()
            .await
            .expect("chunk upload");
        let status = res.status().as_u16();
        last = res.json().await.unwrap_or(Value::Null);
        if status != 201 {
            h.problem(format!("POST {FILES} chunk {n} (Content-Range bytes {start}-{}/{size}): expected 201, got {status}: {last}", end - 1));
            break;
        }
        if let Err(e) = h.spec.check_response("POST", FILES, 201, &last) {
            h.problem(format!(
                "POST {FILES} chunk {n}: body does not match the spec: {}",
                e.join("; ")
            ));
        }
        file_id = last["$id"].as_str().unwrap_or("big").to_owned();
    }
    if last["chunksTotal"] != json!(3)
        || last["chunksUploaded"] != json!(3)
        || last["sizeOriginal"] != json!(size)
    {
        h.problem(format!("chunked upload: expected chunksTotal=chunksUploaded=3 and sizeOriginal={size}, got {last}"));
    }
    let dl = h
        .http
        .get(url(format!(
            "/storage/buckets/assets/files/{file_id}/download"
        )))
        .header("X-Appwrite-Project", PROJECT)
        .header("X-Appwrite-Key", KEY)
        .send()
        .await
        .expect("download");
    let dl_status = dl.status().as_u16();
    let got = dl.bytes().await.unwrap_or_default();
    if dl_status != 200 || got.as_ref() != bytes.as_slice() {
        h.problem(format!("GET .../files/{file_id}/download: expected 200 and the {size} uploaded bytes, got {dl_status} and {} bytes", got.len()));
    }

    h.ok(
        Req::get(FILE).p("bucketId", "assets").p("fileId", "hello"),
        200,
    )
    .await;
    h.ok(Req::get(FILES).p("bucketId", "assets"), 200).await;
    h.err(
        Req::get(FILE).p("bucketId", "assets").p("fileId", "nope"),
        404,
        "storage_file_not_found",
    )
    .await;

    // Limits and duplicates: multipart errors must still be Appwrite errors.
    for (bucket, id, name, len, status, kind) in [
        (
            "tiny",
            "big",
            "big.png",
            2048,
            400,
            "storage_invalid_file_size",
        ),
        (
            "tiny",
            "txt",
            "note.txt",
            10,
            400,
            "storage_file_type_unsupported",
        ),
        (
            "assets",
            "hello",
            "hello.txt",
            10,
            409,
            "storage_file_already_exists",
        ),
    ] {
        let res = h
            .http
            .post(url(format!("/storage/buckets/{bucket}/files")))
            .header("X-Appwrite-Project", PROJECT)
            .header("X-Appwrite-Key", KEY)
            .multipart(upload(id, name, vec![b'x'; len]))
            .send()
            .await
            .expect("upload");
        let got = res.status().as_u16();
        let body: Value = res.json().await.unwrap_or(Value::Null);
        let label = format!("POST /storage/buckets/{bucket}/files ({name}, {len} bytes)");
        if got != status || body["type"] != kind {
            h.problem(format!(
                "{label}: expected {status} {kind}, got {got} {}",
                body["type"]
            ));
        }
        h.check_error_body(&label, got, &body);
    }

    h.ok(
        Req::delete(FILE)
            .p("bucketId", "assets")
            .p("fileId", "hello"),
        204,
    )
    .await;
    h.err(
        Req::delete(FILE)
            .p("bucketId", "assets")
            .p("fileId", "hello"),
        404,
        "storage_file_not_found",
    )
    .await;
    h.finish("storage");
}

#[tokio::test]
async fn health_matches_the_spec() {
    let mut h = Harness::start().await;
    // Not in the server spec; our README documents it as public.
    let (status, body, _) = h.send(&Req::get("/health/version").auth(Auth::Guest)).await;
    if status != 200 || body["version"] != "1.8.1" {
        h.problem(format!(
            "GET /health/version: expected 200 {{\"version\":\"1.8.1\"}}, got {status} {body}"
        ));
    }
    h.ok(Req::get("/health"), 200).await;
    h.finish("health");
}
