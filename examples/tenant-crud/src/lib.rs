//! An http component (one instance per request) that keeps its tenant's items in MySQL. Each
//! request connects to `127.0.0.1:$DB_PORT` on the tenant's virtual network — the tenant's
//! pooler, which holds the real server connections — with `mysql_async`, unmodified.
//!
//! - `GET /items` — `200` and the items as JSON: `[{"id":1,"name":"..."}]`.
//! - `POST /items` — adds the request body (UTF-8, 1–200 bytes) as an item; `201` and the item.
//! - `POST /items/<id>/delete` — deletes it; `204`, or `404` if there is none.
//!
//! Environment: `DB_USER`, `DB_PASSWORD`, `DB_NAME`, `DB_PORT` (default 3306). Errors answer
//! `502` with the database's message.

use std::io::{Read, Write};

use mysql_async::prelude::*;
use wasip2::http::types::{
    Fields, IncomingRequest, Method, OutgoingBody, OutgoingResponse, ResponseOutparam,
};

struct TenantCrud;

wasip2::http::proxy::export!(TenantCrud);

impl wasip2::exports::http::incoming_handler::Guest for TenantCrud {
    fn handle(request: IncomingRequest, out: ResponseOutparam) {
        let path = request.path_with_query().unwrap_or_default();
        let method = request.method();
        let body = match method {
            Method::Post => read_body(&request),
            _ => Ok(Vec::new()),
        };
        let (status, body) = match body {
            Err(e) => (400, format!("cannot read the request body: {e}\n")),
            Ok(body) => route(&method, &path, body),
        };
        respond(out, status, body.as_bytes());
    }
}

fn route(method: &Method, path: &str, body: Vec<u8>) -> (u16, String) {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => return (500, format!("no async runtime: {e}\n")),
    };
    let result = runtime.block_on(async {
        match (method, path) {
            (Method::Get, "/items") => list().await.map(|json| (200, json)),
            (Method::Post, "/items") => match String::from_utf8(body) {
                Ok(name) if (1..=200).contains(&name.trim().len()) => {
                    add(name.trim()).await.map(|json| (201, json))
                }
                _ => Ok((400, "an item is 1 to 200 bytes of UTF-8 text\n".to_owned())),
            },
            (Method::Post, p) if p.starts_with("/items/") && p.ends_with("/delete") => {
                match p["/items/".len()..p.len() - "/delete".len()].parse::<u64>() {
                    Ok(id) => delete(id).await.map(|found| {
                        if found { (204, String::new()) } else { (404, "no such item\n".to_owned()) }
                    }),
                    Err(_) => Ok((404, "no such item\n".to_owned())),
                }
            }
            _ => Ok((404, format!("no such route: {path}\n"))),
        }
    });
    result.unwrap_or_else(|e| (502, format!("database error: {e}\n")))
}

async fn connect() -> Result<mysql_async::Conn, mysql_async::Error> {
    let var = |name: &str| std::env::var(name).unwrap_or_default();
    let port = var("DB_PORT").parse().unwrap_or(3306);
    let opts = mysql_async::OptsBuilder::default()
        .ip_or_hostname("127.0.0.1")
        .tcp_port(port)
        .user(Some(var("DB_USER")))
        .pass(Some(var("DB_PASSWORD")))
        .db_name(Some(var("DB_NAME")))
        .prefer_socket(false);
    let mut conn = mysql_async::Conn::new(opts).await?;
    conn.query_drop(
        "CREATE TABLE IF NOT EXISTS items (id BIGINT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(200) NOT NULL)",
    )
    .await?;
    Ok(conn)
}

async fn list() -> Result<String, mysql_async::Error> {
    let mut conn = connect().await?;
    let items: Vec<(u64, String)> = conn.query("SELECT id, name FROM items ORDER BY id").await?;
    conn.disconnect().await?;
    let entries: Vec<String> = items.iter().map(|(id, name)| item_json(*id, name)).collect();
    Ok(format!("[{}]", entries.join(",")))
}

async fn add(name: &str) -> Result<String, mysql_async::Error> {
    let mut conn = connect().await?;
    conn.exec_drop("INSERT INTO items (name) VALUES (?)", (name,)).await?;
    let id = conn.last_insert_id().unwrap_or(0);
    conn.disconnect().await?;
    Ok(item_json(id, name))
}

async fn delete(id: u64) -> Result<bool, mysql_async::Error> {
    let mut conn = connect().await?;
    conn.exec_drop("DELETE FROM items WHERE id = ?", (id,)).await?;
    let found = conn.affected_rows() > 0;
    conn.disconnect().await?;
    Ok(found)
}

fn item_json(id: u64, name: &str) -> String {
    let mut escaped = String::with_capacity(name.len());
    for c in name.chars() {
        match c {
            '"' => escaped.push_str("\\\""),
            '\\' => escaped.push_str("\\\\"),
            c if (c as u32) < 0x20 => escaped.push_str(&format!("\\u{:04x}", c as u32)),
            c => escaped.push(c),
        }
    }
    format!("{{\"id\":{id},\"name\":\"{escaped}\"}}")
}

fn read_body(request: &IncomingRequest) -> Result<Vec<u8>, String> {
    let body = request.consume().map_err(|()| "body already consumed".to_owned())?;
    let mut stream = body.stream().map_err(|()| "body stream already taken".to_owned())?;
    let mut data = Vec::new();
    stream.read_to_end(&mut data).map_err(|e| e.to_string())?;
    drop(stream);
    Ok(data)
}

fn respond(out: ResponseOutparam, status: u16, body: &[u8]) {
    let headers = Fields::new();
    let content_type: &[u8] = if status < 300 { b"application/json" } else { b"text/plain; charset=utf-8" };
    let _ = headers.append("content-type", content_type);
    let response = OutgoingResponse::new(headers);
    let _ = response.set_status_code(status);
    let Ok(outgoing) = response.body() else {
        return;
    };
    ResponseOutparam::set(out, Ok(response));
    if let Ok(mut stream) = outgoing.write() {
        let _ = stream.write_all(body);
        let _ = stream.flush();
        drop(stream);
    }
    let _ = OutgoingBody::finish(outgoing, None);
}
