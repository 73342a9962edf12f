//! An http component (one instance per request) that keeps its tenant's items in MySQL. Each
//! request connects to `127.0.0.1:$DB_PORT` on the tenant's virtual network — the tenant's
//! pooler, which holds the real server connections — with `mysql_async`, unmodified. The page
//! also counts its views with the tenant's counter service (`127.0.0.1:$COUNTER_PORT`).
//!
//! A web page:
//! - `GET /` — the items, a form to add one, a button to delete each, and the view count.
//! - `POST /add` (form field `name`) and `POST /delete/<id>` — then `303` back to `/`.
//!
//! A JSON API:
//! - `GET /api/items` — `200` and the items: `[{"id":1,"name":"..."}]`.
//! - `POST /api/items` — adds the request body (UTF-8, 1–200 bytes); `201` and the item.
//! - `POST /api/items/<id>/delete` — `204`, or `404` if there is no such item.
//!
//! Environment: `DB_USER`, `DB_PASSWORD`, `DB_NAME`, `DB_PORT` (default 3306), `TENANT` (shown
//! on the page), `COUNTER_PORT` (default 7000; the page shows no count if nothing listens).
//! Database errors answer `502` with the database's message.

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
        let answer = match body {
            Err(e) => Answer::text(400, format!("cannot read the request body: {e}\n")),
            Ok(body) => route(&method, &path, body),
        };
        respond(out, &answer);
    }
}

/// An answer: status, content type, body, and a `Location` for redirects.
struct Answer {
    status: u16,
    content_type: &'static str,
    body: String,
    location: Option<&'static str>,
}

impl Answer {
    fn json(status: u16, body: String) -> Self {
        Answer { status, content_type: "application/json", body, location: None }
    }

    fn text(status: u16, body: String) -> Self {
        Answer { status, content_type: "text/plain; charset=utf-8", body, location: None }
    }

    fn html(body: String) -> Self {
        Answer { status: 200, content_type: "text/html; charset=utf-8", body, location: None }
    }

    fn back_to_page() -> Self {
        Answer {
            status: 303,
            content_type: "text/plain; charset=utf-8",
            body: String::new(),
            location: Some("/"),
        }
    }
}

fn route(method: &Method, path: &str, body: Vec<u8>) -> Answer {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => return Answer::text(500, format!("no async runtime: {e}\n")),
    };
    let result = runtime.block_on(async {
        match (method, path) {
            (Method::Get, "/") => page().await.map(Answer::html),
            (Method::Post, "/add") => match form_field(&body, "name").and_then(valid_name) {
                Some(name) => add(&name).await.map(|_| Answer::back_to_page()),
                None => Ok(Answer::text(400, "an item is 1 to 200 bytes of UTF-8 text\n".to_owned())),
            },
            (Method::Post, p) if p.starts_with("/delete/") => match p["/delete/".len()..].parse::<u64>() {
                Ok(id) => delete(id).await.map(|_| Answer::back_to_page()),
                Err(_) => Ok(Answer::text(404, "no such item\n".to_owned())),
            },
            (Method::Get, "/api/items") => list().await.map(|items| Answer::json(200, items_json(&items))),
            (Method::Post, "/api/items") => match String::from_utf8(body).ok().and_then(valid_name) {
                Some(name) => add(&name).await.map(|id| Answer::json(201, item_json(id, &name))),
                None => Ok(Answer::text(400, "an item is 1 to 200 bytes of UTF-8 text\n".to_owned())),
            },
            (Method::Post, p) if p.starts_with("/api/items/") && p.ends_with("/delete") => {
                match p["/api/items/".len()..p.len() - "/delete".len()].parse::<u64>() {
                    Ok(id) => delete(id).await.map(|found| {
                        if found {
                            Answer::text(204, String::new())
                        } else {
                            Answer::text(404, "no such item\n".to_owned())
                        }
                    }),
                    Err(_) => Ok(Answer::text(404, "no such item\n".to_owned())),
                }
            }
            _ => Ok(Answer::text(404, format!("no such route: {path}\n"))),
        }
    });
    result.unwrap_or_else(|e| Answer::text(502, format!("database error: {e}\n")))
}

fn valid_name(name: String) -> Option<String> {
    let name = name.trim().to_owned();
    (1..=200).contains(&name.len()).then_some(name)
}

/// The value of `field` in an `application/x-www-form-urlencoded` body.
fn form_field(body: &[u8], field: &str) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    text.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        (key == field).then(|| percent_decode(value))
    })
}

fn percent_decode(value: &str) -> String {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let decoded = match bytes[i] {
            b'+' => b' ',
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(high), Some(low)) => {
                    i += 2;
                    high << 4 | low
                }
                _ => b'%',
            },
            b => b,
        };
        out.push(decoded);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Counts one more view with the tenant's counter service; `None` if it does not answer.
fn count_view() -> Option<String> {
    let port = std::env::var("COUNTER_PORT").unwrap_or_else(|_| "7000".to_owned());
    let mut stream = std::net::TcpStream::connect(format!("127.0.0.1:{port}")).ok()?;
    stream.write_all(b"incr\n").ok()?;
    let mut reply = String::new();
    stream.read_to_string(&mut reply).ok()?;
    let reply = reply.trim();
    reply.parse::<u64>().is_ok().then(|| reply.to_owned())
}

async fn page() -> Result<String, mysql_async::Error> {
    let items = list().await?;
    let tenant = html_escape(&std::env::var("TENANT").unwrap_or_else(|_| "this tenant".to_owned()));
    let views = count_view().map_or_else(
        || "<p class=\"views\">(the counter service is not answering)</p>".to_owned(),
        |n| format!("<p class=\"views\">Views of this page: <span id=\"views\">{n}</span></p>"),
    );
    let rows: String = items
        .iter()
        .map(|(id, name)| {
            format!(
                "<li data-id=\"{id}\">{name} <form method=\"post\" action=\"/delete/{id}\"><button>Delete</button></form></li>\n",
                name = html_escape(name)
            )
        })
        .collect();
    Ok(format!(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>{tenant}: items</title>\n\
         <style>body{{font-family:sans-serif;max-width:40em;margin:2em auto}}li form{{display:inline}}</style></head>\n\
         <body><h1>Items of {tenant}</h1>\n{views}\n<ul id=\"items\">\n{rows}</ul>\n\
         <form method=\"post\" action=\"/add\"><input name=\"name\" maxlength=\"200\" required \
         placeholder=\"a new item\"> <button id=\"add\">Add</button></form>\n\
         <p><small>Stored in MySQL through {tenant}'s pool on its virtual network. JSON: <a href=\"/api/items\">/api/items</a></small></p>\n\
         </body></html>\n"
    ))
}

fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
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

async fn list() -> Result<Vec<(u64, String)>, mysql_async::Error> {
    let mut conn = connect().await?;
    let items: Vec<(u64, String)> = conn.query("SELECT id, name FROM items ORDER BY id").await?;
    conn.disconnect().await?;
    Ok(items)
}

async fn add(name: &str) -> Result<u64, mysql_async::Error> {
    let mut conn = connect().await?;
    conn.exec_drop("INSERT INTO items (name) VALUES (?)", (name,)).await?;
    let id = conn.last_insert_id().unwrap_or(0);
    conn.disconnect().await?;
    Ok(id)
}

fn items_json(items: &[(u64, String)]) -> String {
    let entries: Vec<String> = items.iter().map(|(id, name)| item_json(*id, name)).collect();
    format!("[{}]", entries.join(","))
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

fn respond(out: ResponseOutparam, answer: &Answer) {
    let headers = Fields::new();
    let _ = headers.append("content-type", answer.content_type.as_bytes());
    if let Some(location) = answer.location {
        let _ = headers.append("location", location.as_bytes());
    }
    let response = OutgoingResponse::new(headers);
    let _ = response.set_status_code(answer.status);
    let Ok(outgoing) = response.body() else {
        return;
    };
    ResponseOutparam::set(out, Ok(response));
    if let Ok(mut stream) = outgoing.write() {
        let _ = stream.write_all(answer.body.as_bytes());
        let _ = stream.flush();
        drop(stream);
    }
    let _ = OutgoingBody::finish(outgoing, None);
}
