//! Extractors that reject with our JSON errors instead of axum's plain text.

use crate::auth::Claims;
use crate::domain::{Org, Scope, TicketId};
use crate::error::Error;
use crate::service::Service;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::{HeaderMap, StatusCode, Uri, header, request::Parts};
use serde::de::DeserializeOwned;

pub const BODY_LIMIT: usize = 64 * 1024;

/// A JSON body. Rejections name the offending field.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = Error;

    async fn from_request(req: Request, state: &S) -> Result<Self, Error> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| {
                let mime = v.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
                mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))
            })
            .unwrap_or(false);
        let bytes = Bytes::from_request(req, state).await.map_err(|r| {
            if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
                Error::PayloadTooLarge(BODY_LIMIT)
            } else {
                Error::invalid("body", "could not be read")
            }
        })?;
        if !is_json {
            return Err(Error::invalid("Content-Type", "must be application/json"));
        }
        parse_json(&bytes).map(ApiJson)
    }
}

pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
    // serde would also read a struct from an array; the contract says object.
    match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
        None => return Err(Error::invalid("body", "malformed JSON: empty body")),
        Some(b'{') => {}
        Some(_) => return Err(Error::invalid("body", "must be a JSON object")),
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(json_error)?;
    de.end()
        .map_err(|e| Error::invalid("body", format!("malformed JSON: {e}")))?;
    Ok(value)
}

fn json_error(err: serde_path_to_error::Error<serde_json::Error>) -> Error {
    use serde_json::error::Category;
    let path = err.path().to_string();
    let inner = err.inner();
    match inner.classify() {
        Category::Syntax | Category::Eof | Category::Io => Error::invalid("body", format!("malformed JSON: {inner}")),
        Category::Data => {
            let msg = inner.to_string();
            let msg = msg.split(" at line ").next().unwrap_or(&msg).to_owned();
            let join = |name: &str| {
                if path == "." {
                    name.to_owned()
                } else {
                    format!("{path}.{name}")
                }
            };
            if let Some(name) = backticked(&msg, "missing field `") {
                Error::invalid(join(name), "is required")
            } else if let Some(name) = backticked(&msg, "duplicate field `") {
                Error::invalid(join(name), "is given more than once")
            } else if let Some(name) = backticked(&msg, "unknown field `") {
                // The path already ends at the unknown field.
                Error::invalid(if path == "." { name.to_owned() } else { path }, "is not a known field")
            } else if path == "." {
                Error::invalid("body", "must be a JSON object")
            } else {
                Error::invalid(path, msg)
            }
        }
    }
}

fn backticked<'a>(msg: &'a str, prefix: &str) -> Option<&'a str> {
    msg.strip_prefix(prefix)?.split('`').next()
}

/// The `{id}` path segment as a ticket id.
pub struct TicketIdPath(pub TicketId);

impl<S: Send + Sync> FromRequestParts<S> for TicketIdPath {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Error> {
        let bad = || Error::invalid("id", "must be a ticket id (a UUID)");
        let Path(raw) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|_| bad())?;
        raw.parse().map(TicketIdPath).map_err(|_| bad())
    }
}

/// Query parameters; unknown or repeated ones are rejected, not ignored.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Error> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(v)| ApiQuery(v))
            .map_err(|e| {
                let text = e.body_text();
                let detail = text
                    .strip_prefix("Failed to deserialize query string: ")
                    .unwrap_or(&text);
                // axum reports "<parameter>: <problem>".
                match detail.split_once(": ") {
                    Some((_, problem)) if problem.starts_with("unknown field `") => {
                        let name = backticked(problem, "unknown field `")
                            .filter(|n| !n.is_empty())
                            .unwrap_or("query");
                        Error::invalid(name, "is not a known query parameter")
                    }
                    Some((name, problem)) if !name.contains(' ') => Error::invalid(name, problem.to_owned()),
                    _ => Error::invalid("query", detail.to_owned()),
                }
            })
    }
}

/// Checks that every query parameter is one of `allowed`: the contract rejects
/// unknown parameters rather than ignoring them, on routes that take none too.
pub fn check_query(uri: &Uri, allowed: &[&str]) -> Result<(), Error> {
    if uri.query().is_none_or(str::is_empty) {
        return Ok(());
    }
    let Query(pairs) =
        Query::<Vec<(String, String)>>::try_from_uri(uri).map_err(|_| Error::invalid("query", "could not be read"))?;
    match pairs.into_iter().find(|(name, _)| !allowed.contains(&name.as_str())) {
        None => Ok(()),
        // A long name is not echoed back.
        Some((name, _)) if name.is_empty() || name.chars().count() > 64 => {
            Err(Error::invalid("query", "holds an unknown query parameter"))
        }
        Some((name, _)) => Err(Error::invalid(name, "is not a known query parameter")),
    }
}

/// For routes that take no query parameters at all (`/health`).
pub struct NoQuery;

impl<S: Send + Sync> FromRequestParts<S> for NoQuery {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Error> {
        check_query(&parts.uri, &[]).map(|()| NoQuery)
    }
}

/// A signed-in admin, from `Authorization: Bearer <jwt>`.
pub struct AdminAuth(pub Claims);

impl FromRequestParts<Service> for AdminAuth {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, service: &Service) -> Result<Self, Error> {
        let claims = service.authenticate_admin(bearer(parts)?).await?;
        super::request_log::note_org(claims.org);
        Ok(AdminAuth(claims))
    }
}

/// The bearer token of the request, or 401.
fn bearer(parts: &Parts) -> Result<&str, Error> {
    let header = parts
        .headers
        .get(header::AUTHORIZATION)
        .ok_or(Error::Unauthorized("missing Authorization: Bearer <jwt>"))?;
    header
        .to_str()
        .ok()
        .and_then(|h| h.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .ok_or(Error::Unauthorized("Authorization must be: Bearer <jwt>"))
}

/// A full admin's token ([`crate::domain::AdminRole`]): what the org's
/// credentials, webhooks and roles need. A limited admin gets 403.
pub struct FullAdminAuth(pub Claims);

impl FromRequestParts<Service> for FullAdminAuth {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, service: &Service) -> Result<Self, Error> {
        let claims = service.authenticate_full_admin(bearer(parts)?).await?;
        super::request_log::note_org(claims.org);
        Ok(FullAdminAuth(claims))
    }
}

/// Who reads a ticket: an admin (a JWT, the admin view) or the client
/// product acting for its customer (the org secret in `X-Api-Key`, the
/// customer's view). A request with a JWT is an admin's, whatever else it
/// carries.
pub enum Caller {
    Admin(Claims),
    Org(Org),
}

impl FromRequestParts<Service> for Caller {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, service: &Service) -> Result<Self, Error> {
        if parts.headers.contains_key(header::AUTHORIZATION) {
            return Ok(Caller::Admin(AdminAuth::from_request_parts(parts, service).await?.0));
        }
        let Some(secret) = org_secret(&parts.headers, None) else {
            return Err(Error::Unauthorized(
                "missing credentials: Authorization: Bearer <jwt>, or X-Api-Key: <org secret>",
            ));
        };
        let org = service.authenticate_org(Some(secret), Scope::TicketsRead).await?;
        super::request_log::note_org(org.id);
        Ok(Caller::Org(org))
    }
}

/// The org secret: header `X-Api-Key` first, else the body's `secret` field.
pub fn org_secret<'a>(headers: &'a HeaderMap, body_secret: Option<&'a str>) -> Option<&'a str> {
    headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .or(body_secret)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        title: String,
        count: Option<u32>,
    }

    fn field_of(json: &str) -> String {
        match parse_json::<Body>(json.as_bytes()) {
            Err(Error::Invalid { field, .. }) => field,
            other => panic!("{json}: {other:?}"),
        }
    }

    #[test]
    fn json_errors_name_the_field() {
        assert_eq!(field_of(r#"{}"#), "title");
        assert_eq!(field_of(r#"{"title": 5}"#), "title");
        assert_eq!(field_of(r#"{"title": "x", "count": "many"}"#), "count");
        assert_eq!(field_of(r#"{"title": "x", "extra": 1}"#), "extra");
        assert_eq!(field_of(r#"{"title": "x""#), "body");
        assert_eq!(field_of(r#"[1]"#), "body");
        assert_eq!(field_of(r#"{"title": "x"} trailing"#), "body");
        assert_eq!(field_of(""), "body");
    }

    #[test]
    fn a_duplicate_key_is_named_as_such() {
        match parse_json::<Body>(br#"{"title": "a", "title": "b"}"#) {
            Err(Error::Invalid { field, message }) => {
                assert_eq!((field.as_str(), message.as_str()), ("title", "is given more than once"));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(field_of(r#"{"title": "a", "count": 1, "count": 2}"#), "count");
    }

    #[test]
    fn unknown_query_parameters_are_named() {
        let allowed = ["limit", "status"];
        let check = |q: &str, allowed: &[&str]| check_query(&q.parse::<Uri>().unwrap(), allowed);
        assert!(check("/tickets", &allowed).is_ok());
        assert!(check("/tickets?", &allowed).is_ok());
        assert!(check("/tickets?limit=5&status=OPEN&limit=", &allowed).is_ok());
        let field = |q: &str, allowed: &[&str]| match check(&format!("/tickets?{q}"), allowed) {
            Err(Error::Invalid { field, .. }) => field,
            other => panic!("{q}: {other:?}"),
        };
        assert_eq!(field("limit=5&debug=1", &allowed), "debug");
        assert_eq!(field("x", &[]), "x");
        assert_eq!(field("fields%5B%5D=a", &[]), "fields[]");
        assert_eq!(field("=1", &[]), "query");
        assert_eq!(field(&format!("{}=1", "n".repeat(65)), &[]), "query");
    }
}
