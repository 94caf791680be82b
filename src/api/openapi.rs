//! `GET /openapi.json`: the OpenAPI 3.1 document, generated from the
//! handlers' `#[utoipa::path]` attributes and the types they speak.

use super::{
    catalog, consent, error, generations, health, lineage, log, metrics, reconcile, statements,
    tlog, usage,
};
use axum::Json;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "ledgerline",
        description = "A verifiable ledger for licensed AI covers and remixes. The checkpoint, the verifier key, proofs and the C2SP tlog-tiles API under /tlog/ are public; everything else needs a bearer API key (`ledgerline keys create`)."
    ),
    paths(
        log::checkpoint,
        log::checkpoints,
        log::key,
        log::witnesses,
        log::events,
        log::stream,
        log::append,
        log::inclusion_proof,
        log::consistency_proof,
        tlog::checkpoint,
        tlog::tile,
        catalog::import,
        consent::withdraw,
        consent::list,
        statements::statement,
        lineage::derivative,
        lineage::upload,
        reconcile::reconcile,
        usage::import,
        generations::submit,
        generations::status,
        generations::sse::events,
        generations::artifacts::artifact,
        health::healthz,
        metrics::metrics,
        openapi_json,
    ),
    components(schemas(error::ErrorBody, log::NewEventBody)),
    modifiers(&BearerScheme),
    tags(
        (name = "log", description = "The append-only log: events, checkpoints, proofs"),
        (name = "money", description = "Catalog, usage reports, royalty statements and lineage"),
        (name = "generation", description = "Generation jobs, their events and the artifacts they make"),
        (name = "operations", description = "Health, metrics and this document"),
    )
)]
pub struct ApiDoc;

/// Declares the `bearer` security scheme the protected paths name.
struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("An API key token from `ledgerline keys create`"))
                    .build(),
            ),
        );
    }
}

/// This document.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "operations",
    responses((status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json"))
)]
pub async fn openapi_json() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
