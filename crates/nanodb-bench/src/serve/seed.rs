//! The load test's data: two collections made through the API, users made through the
//! batch API, and the records written straight into the data directory with nanodb while
//! the server is stopped (a million records through HTTP would take longer than the test).
//!
//! - `items`: `title` (text), `n` (number, indexed), `body` (text); every rule `""` (open to
//!   guests). Record k has id `item_id(k)` and `n = item_n(k)`, so a filter `n = X` matches
//!   `ITEMS_PER_N` records.
//! - `notes`: `title`, `n`, `owner` (relation to `users`, indexed); list and view rule
//!   `owner = @request.auth.id` (row-level security). Note k belongs to user k mod users.
//! - `users`: `user{i}@example.com`, all with `USER_PASSWORD`.
//!
//! Records are stored as the server stores them (its fields, nanodb's `id`, `created`,
//! `updated`), in the collections named by the ids the API gave, so the server's indexes
//! are maintained by nanodb as they are inserted.
//!
//! Thread safety: runs on the orchestrating thread.

use super::http::Connection;
use nanodb::{DatabaseOptions, NanoDb, NanoDbOptions, Value};
use serde_json::{json, Value as Json};
use std::net::SocketAddr;
use std::path::Path;

/// The password of every load-test user.
pub const USER_PASSWORD: &str = "load-test-password";
/// Records per value of `items.n`.
pub const ITEMS_PER_N: u64 = 10;
/// Records per `insert_many` call while seeding.
const SEED_CHUNK_RECORDS: u64 = 1_000;
/// Users per batch request while seeding (the server's default batch limit).
const USERS_PER_BATCH: usize = 50;

/// The id of item `k` (15 characters of `a-z0-9`).
pub fn item_id(k: u64) -> String {
    format!("it{k:013}")
}

/// The id of note `k`.
pub fn note_id(k: u64) -> String {
    format!("no{k:013}")
}

/// Distinct values of `items.n` for `records` items.
pub fn n_values(records: u64) -> u64 {
    (records / ITEMS_PER_N).max(1)
}

/// `items.n` of item `k`: a scrambled `k mod n_values`, each value on `ITEMS_PER_N` items.
pub fn item_n(k: u64, records: u64) -> u64 {
    let values = n_values(records);
    (k % values).wrapping_mul(2_654_435_761) % values
}

/// The collection ids the API gave.
#[derive(Debug, Clone)]
pub struct Schema {
    pub items_id: String,
    pub notes_id: String,
}

fn call(
    connection: &mut Connection,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &Json,
) -> Result<Json, String> {
    let bytes = body.to_string();
    let answer = connection
        .send(method, path, token, Some(bytes.as_bytes()))
        .map_err(|error| format!("{method} {path}: {error}"))?;
    let text = String::from_utf8_lossy(&answer.body);
    if answer.status != 200 {
        return Err(format!("{method} {path}: {} {text}", answer.status));
    }
    serde_json::from_str(&text).map_err(|error| format!("{method} {path}: {error}"))
}

/// Logs in to `collection` as `email`; the token.
pub fn login(
    address: SocketAddr,
    collection: &str,
    email: &str,
    password: &str,
) -> Result<String, String> {
    let mut connection = Connection::open(address).map_err(|error| error.to_string())?;
    let path = format!("/api/collections/{collection}/auth-with-password");
    let answer = call(
        &mut connection,
        "POST",
        &path,
        None,
        &json!({"identity": email, "password": password}),
    )?;
    answer["token"].as_str().map(str::to_string).ok_or_else(|| "no token".into())
}

/// Creates `items` and `notes` as superuser `admin`.
pub fn create_schema(address: SocketAddr, admin: &str) -> Result<Schema, String> {
    let mut connection = Connection::open(address).map_err(|error| error.to_string())?;
    let items = call(
        &mut connection,
        "POST",
        "/api/collections",
        Some(admin),
        &json!({
            "name": "items",
            "fields": [
                {"name": "title", "type": "text"},
                {"name": "n", "type": "number"},
                {"name": "body", "type": "text"},
            ],
            "indexes": ["CREATE INDEX idx_items_n ON items (n)"],
            "listRule": "", "viewRule": "", "createRule": "", "updateRule": "", "deleteRule": "",
        }),
    )?;
    let owner = "owner = @request.auth.id";
    let notes = call(
        &mut connection,
        "POST",
        "/api/collections",
        Some(admin),
        &json!({
            "name": "notes",
            "fields": [
                {"name": "title", "type": "text"},
                {"name": "n", "type": "number"},
                {"name": "owner", "type": "relation", "collectionId": "_pb_users_auth_", "maxSelect": 1},
            ],
            "indexes": ["CREATE INDEX idx_notes_owner ON notes (owner)"],
            "listRule": owner, "viewRule": owner, "createRule": owner, "updateRule": owner, "deleteRule": owner,
        }),
    )?;
    let id = |json: &Json| json["id"].as_str().map(str::to_string).ok_or("no collection id");
    Ok(Schema { items_id: id(&items)?, notes_id: id(&notes)? })
}

/// The email of user `i`.
pub fn user_email(i: usize) -> String {
    format!("user{i}@example.com")
}

/// Creates `count` users through the batch API; their ids, in order.
pub fn create_users(address: SocketAddr, admin: &str, count: usize) -> Result<Vec<String>, String> {
    let mut connection = Connection::open(address).map_err(|error| error.to_string())?;
    let mut ids = Vec::with_capacity(count);
    for start in (0..count).step_by(USERS_PER_BATCH) {
        let requests: Vec<Json> = (start..(start + USERS_PER_BATCH).min(count))
            .map(|i| {
                json!({"method": "create", "collection": "users", "data": {
                    "email": user_email(i), "password": USER_PASSWORD, "passwordConfirm": USER_PASSWORD,
                }})
            })
            .collect();
        let answer = call(
            &mut connection,
            "POST",
            "/api/batch",
            Some(admin),
            &json!({"requests": requests}),
        )?;
        for result in answer.as_array().ok_or("a batch answer is a list")? {
            ids.push(result["body"]["id"].as_str().ok_or("no user id")?.to_string());
        }
    }
    Ok(ids)
}

/// Writes `records` items and `records` notes into the (stopped) server's data directory.
pub fn insert_records(
    dir: &Path,
    schema: &Schema,
    users: &[String],
    records: u64,
) -> Result<(), String> {
    // The database options `nanodb serve` opens with, so the files written here are the ones
    // a server that had taken these records itself would have.
    let options =
        NanoDbOptions { database: DatabaseOptions::small_memory(), ..NanoDbOptions::default() };
    let runtime = NanoDb::open(dir, options).map_err(|error| error.to_string())?;
    let database = runtime.database("pb").map_err(|error| error.to_string())?;
    let items = database.open_collection(&schema.items_id).map_err(|error| error.to_string())?;
    let notes = database.open_collection(&schema.notes_id).map_err(|error| error.to_string())?;
    let body = "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore.";
    let mut start = 0;
    while start < records {
        let end = (start + SEED_CHUNK_RECORDS).min(records);
        let chunk: Vec<Value> = (start..end)
            .map(|k| {
                Value::from(json!({"id": item_id(k), "title": format!("item {k}"), "n": item_n(k, records), "body": body}))
            })
            .collect();
        items.insert_many(chunk).map_err(|error| format!("seeding items: {error}"))?;
        let chunk: Vec<Value> = (start..end)
            .map(|k| {
                let owner = &users[(k % users.len() as u64) as usize];
                Value::from(json!({"id": note_id(k), "title": format!("note {k}"), "n": k % 1000, "owner": owner}))
            })
            .collect();
        notes.insert_many(chunk).map_err(|error| format!("seeding notes: {error}"))?;
        start = end;
    }
    runtime.close().map_err(|error| error.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_n_values() {
        assert_eq!(item_id(42), "it0000000000042");
        assert_eq!(item_id(42).len(), 15);
        assert_eq!(note_id(7).len(), 15);
        let records = 1_000;
        let mut counts = vec![0; n_values(records) as usize];
        for k in 0..records {
            counts[item_n(k, records) as usize] += 1;
        }
        assert!(counts.iter().all(|count| *count == ITEMS_PER_N), "each value on 10 items");
    }
}
