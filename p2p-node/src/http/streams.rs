//! `/api/v0/streams` and `/api/v0/watch/{stream}`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use vilokanam_api::{
    EarningInfo, SpendingInfo, SpendingState, StreamInfo, WatchRequest, WatchResponse,
};

use super::{Api, HttpError, HttpResult};
use crate::node::playlist_path;

pub(super) fn routes() -> Router<Api> {
    Router::new()
        .route("/api/v0/streams", get(list))
        .route("/api/v0/streams/{stream}", get(one))
        .route("/api/v0/watch/{stream}", post(watch).delete(unwatch))
        .route("/api/v0/spending", get(spending))
        .route("/api/v0/earnings", get(earnings))
        .route("/api/v0/earnings/claim", post(claim))
}

async fn spending(State(api): State<Api>) -> Json<Vec<SpendingInfo>> {
    Json(
        api.node
            .spending()
            .await
            .into_iter()
            .map(|s| {
                use crate::node::payments::SpendingState as S;
                let (state, refunded) = match s.state {
                    S::Watching => (SpendingState::Watching, None),
                    S::Ended => (SpendingState::Ended, None),
                    S::Closed => (SpendingState::Closed, None),
                    S::Reclaimed { refunded } => {
                        (SpendingState::Reclaimed, Some(refunded.to_string()))
                    }
                };
                SpendingInfo {
                    stream: s.stream.to_string(),
                    channel: s.channel,
                    seconds_paid: s.seconds_paid,
                    spent: s.spent.to_string(),
                    budget: s.budget.to_string(),
                    seconds_left: s.seconds_left,
                    state,
                    expires_at: s.expires_at,
                    refunded,
                }
            })
            .collect(),
    )
}

async fn earnings(State(api): State<Api>) -> HttpResult<Json<Vec<EarningInfo>>> {
    Ok(Json(
        api.node
            .earnings()?
            .into_iter()
            .map(|r| EarningInfo {
                stream: r.stream,
                channel: r.channel,
                seconds: r.seconds,
                accrued: r.cumulative.to_string(),
                claimed: r.claimed.to_string(),
            })
            .collect(),
    ))
}

async fn claim(State(api): State<Api>) -> HttpResult<Json<String>> {
    Ok(Json(api.node.claim().await?.to_string()))
}

async fn list(State(api): State<Api>) -> HttpResult<Json<Vec<StreamInfo>>> {
    Ok(Json(api.node.streams().await?))
}

async fn one(State(api): State<Api>, Path(stream): Path<String>) -> HttpResult<Json<StreamInfo>> {
    Ok(Json(api.node.stream(&stream).await?))
}

/// A price cap and a `(budget, ceiling)`, in planck.
pub(super) type WatchTerms = (Option<u128>, Option<(u128, u128)>);

/// A watch request's price cap and `(budget, ceiling)`, checked.
pub(super) fn watch_terms(req: &WatchRequest) -> Result<WatchTerms, HttpError> {
    let amount = |field: &str, v: &Option<String>, what: &str| {
        v.as_deref()
            .map(str::trim)
            .map(|text| {
                text.parse::<u128>().map_err(|e| {
                    HttpError(
                        StatusCode::BAD_REQUEST,
                        format!("{field} {text:?}: not {what}: {e}"),
                    )
                })
            })
            .transpose()
    };
    let cap = amount(
        "max_price_per_sec",
        &req.max_price_per_sec,
        "planck per second",
    )?;
    let budget = amount("budget", &req.budget, "an amount in planck")?;
    let top_up_to = amount("top_up_to", &req.top_up_to, "an amount in planck")?;
    Ok((cap, budget.map(|b| (b, top_up_to.unwrap_or(b)))))
}

async fn watch(
    State(api): State<Api>,
    Path(stream): Path<String>,
    body: Option<Json<WatchRequest>>,
) -> HttpResult<Json<WatchResponse>> {
    let req = body.map(|Json(b)| b).unwrap_or_default();
    let (cap, budget) = watch_terms(&req)?;
    let id = api.node.watch_paying(&stream, cap, budget).await?;
    Ok(Json(WatchResponse {
        playlist: playlist_path(&id),
        stream: id.to_string(),
    }))
}

async fn unwatch(State(api): State<Api>, Path(stream): Path<String>) -> HttpResult<StatusCode> {
    api.node.unwatch(&stream).await?;
    Ok(StatusCode::NO_CONTENT)
}
