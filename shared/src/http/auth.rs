//! The auth area's handlers: org signup, admin signup and sign-in. Each
//! parses its body into a typed command, naming the field on failure.

use super::client_ip::Client;
use super::extract::{ApiJson, org_secret};
use crate::auth::password;
use crate::domain::{Admin, Domain, Email, MAX_NAME, OrgId, Scope, Timestamp, line};
use crate::error::Result;
use crate::service::{NewAdmin, NewOrg, Service, Signin};
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrgSignupBody {
    name: String,
    domain: String,
}

impl OrgSignupBody {
    fn command(self) -> Result<NewOrg> {
        Ok(NewOrg {
            name: line("name", &self.name, MAX_NAME)?,
            domain: Domain::parse("domain", &self.domain)?,
        })
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OrgSignupReply {
    id: OrgId,
    name: String,
    domain: String,
    /// Shown once; only its hash is kept.
    secret: String,
    created_at: Timestamp,
}

pub async fn org_signup(
    State(service): State<Service>,
    ApiJson(body): ApiJson<OrgSignupBody>,
) -> Result<(StatusCode, Json<OrgSignupReply>)> {
    let signup = service.signup_org(body.command()?).await?;
    super::request_log::note_org(signup.org.id);
    Ok((
        StatusCode::CREATED,
        Json(OrgSignupReply {
            id: signup.org.id,
            name: signup.org.name,
            domain: signup.org.domain.as_str().to_owned(),
            secret: signup.secret,
            created_at: signup.org.created_at,
        }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AdminSignupBody {
    first_name: String,
    last_name: String,
    email: String,
    password: String,
    #[serde(default)]
    secret: Option<String>,
    #[serde(default)]
    available: Option<bool>,
}

impl AdminSignupBody {
    fn command(self) -> Result<NewAdmin> {
        password::check_password_rules("password", &self.password)?;
        Ok(NewAdmin {
            first_name: line("firstName", &self.first_name, MAX_NAME)?,
            last_name: line("lastName", &self.last_name, MAX_NAME)?,
            email: Email::parse("email", &self.email)?,
            password: self.password,
            available: self.available.unwrap_or(true),
        })
    }
}

pub async fn admin_signup(
    State(service): State<Service>,
    headers: HeaderMap,
    ApiJson(mut body): ApiJson<AdminSignupBody>,
) -> Result<(StatusCode, Json<Admin>)> {
    let secret = body.secret.take();
    let credential = service
        .authenticate_credential(org_secret(&headers, secret.as_deref()), Scope::AdminsCreate)
        .await?;
    super::request_log::note_org(credential.org.id);
    let admin = service.signup_admin(&credential, body.command()?).await?;
    Ok((StatusCode::CREATED, Json(admin)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SigninBody {
    email: String,
    password: String,
    /// Needed only when the email and password fit accounts in several orgs.
    #[serde(default)]
    org_domain: Option<String>,
}

impl SigninBody {
    fn command(self) -> Result<Signin> {
        Ok(Signin {
            // Not an email at all is the same 401 as an unknown one.
            email: Email::parse("email", &self.email).ok(),
            password: self.password,
            org_domain: self
                .org_domain
                .as_deref()
                .map(|d| Domain::parse("orgDomain", d))
                .transpose()?,
        })
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SigninReply {
    jwt: String,
    expires_at: Timestamp,
}

pub async fn admin_signin(
    State(service): State<Service>,
    Client(client): Client,
    ApiJson(body): ApiJson<SigninBody>,
) -> Result<Json<SigninReply>> {
    let (jwt, expires_at) = service.signin(body.command()?, client).await?;
    Ok(Json(SigninReply { jwt, expires_at }))
}
