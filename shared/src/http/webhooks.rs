//! The webhooks area's handlers (admin JWT): registering, listing, deleting
//! endpoints, rotating their signing secrets, and their deliveries.

use super::extract::{ApiJson, FullAdminAuth};
use crate::domain::WebhookId;
use crate::domain::webhooks::{Webhook, WebhookDelivery, WebhookEventType, is_message_id};
use crate::error::{Error, Result};
use crate::service::Service;
use axum::Json;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhookBody {
    url: String,
    events: Vec<String>,
}

impl CreateWebhookBody {
    fn events(&self) -> Result<Vec<WebhookEventType>> {
        let mut events = self
            .events
            .iter()
            .map(|e| WebhookEventType::parse("events", e))
            .collect::<Result<Vec<_>>>()?;
        events.sort();
        events.dedup();
        if events.is_empty() {
            return Err(Error::invalid("events", "must name at least one event type"));
        }
        Ok(events)
    }
}

/// An endpoint with its signing secret, shown this once.
#[derive(Serialize)]
pub struct IssuedWebhookReply {
    #[serde(flatten)]
    webhook: Webhook,
    secret: String,
}

pub async fn create_webhook(
    State(service): State<Service>,
    FullAdminAuth(claims): FullAdminAuth,
    ApiJson(body): ApiJson<CreateWebhookBody>,
) -> Result<(StatusCode, Json<IssuedWebhookReply>)> {
    let events = body.events()?;
    let issued = service.create_webhook(&claims, &body.url, events).await?;
    Ok((
        StatusCode::CREATED,
        Json(IssuedWebhookReply {
            webhook: issued.webhook,
            secret: issued.secret,
        }),
    ))
}

#[derive(Serialize)]
pub struct WebhookList {
    webhooks: Vec<Webhook>,
}

pub async fn list_webhooks(
    State(service): State<Service>,
    FullAdminAuth(claims): FullAdminAuth,
) -> Result<Json<WebhookList>> {
    Ok(Json(WebhookList {
        webhooks: service.webhooks(&claims).await?,
    }))
}

/// The `{id}` of `/webhooks/{id}...`; anything but a canonical UUID is a 400.
pub struct WebhookIdPath(WebhookId);

fn bad_webhook_id() -> Error {
    Error::invalid("id", "must be a webhook id (a UUID)")
}

impl<S: Send + Sync> FromRequestParts<S> for WebhookIdPath {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self> {
        let Path(raw) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|_| bad_webhook_id())?;
        raw.parse().map(WebhookIdPath).map_err(|_| bad_webhook_id())
    }
}

pub async fn delete_webhook(
    State(service): State<Service>,
    FullAdminAuth(claims): FullAdminAuth,
    WebhookIdPath(id): WebhookIdPath,
) -> Result<StatusCode> {
    service.delete_webhook(&claims, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize)]
pub struct RotatedWebhookSecret {
    secret: String,
}

pub async fn rotate_webhook_secret(
    State(service): State<Service>,
    FullAdminAuth(claims): FullAdminAuth,
    WebhookIdPath(id): WebhookIdPath,
) -> Result<Json<RotatedWebhookSecret>> {
    Ok(Json(RotatedWebhookSecret {
        secret: service.rotate_webhook_secret(&claims, id).await?,
    }))
}

#[derive(Serialize)]
pub struct DeliveryList {
    deliveries: Vec<WebhookDelivery>,
}

pub async fn list_deliveries(
    State(service): State<Service>,
    FullAdminAuth(claims): FullAdminAuth,
    WebhookIdPath(id): WebhookIdPath,
) -> Result<Json<DeliveryList>> {
    Ok(Json(DeliveryList {
        deliveries: service.webhook_deliveries(&claims, id).await?,
    }))
}

/// `/webhooks/{id}/deliveries/{deliveryId}`: a webhook id and a message id (`msg_<UUID>`).
pub struct DeliveryPath(WebhookId, String);

impl<S: Send + Sync> FromRequestParts<S> for DeliveryPath {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self> {
        let Path((hook, delivery)) = Path::<(String, String)>::from_request_parts(parts, state)
            .await
            .map_err(|_| bad_webhook_id())?;
        let hook = hook.parse().map_err(|_| bad_webhook_id())?;
        if !is_message_id(&delivery) {
            return Err(Error::invalid("deliveryId", "must be a delivery id (msg_ and a UUID)"));
        }
        Ok(DeliveryPath(hook, delivery))
    }
}

pub async fn redeliver(
    State(service): State<Service>,
    FullAdminAuth(claims): FullAdminAuth,
    DeliveryPath(id, delivery): DeliveryPath,
) -> Result<(StatusCode, Json<WebhookDelivery>)> {
    Ok((
        StatusCode::ACCEPTED,
        Json(service.redeliver(&claims, id, &delivery).await?),
    ))
}
