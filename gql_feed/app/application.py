"""The Starlette application: routes, and a lifespan that opens and closes everything."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, nullcontext
from pathlib import Path

import strawberry
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy.engine import Engine
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from strawberry.schema.config import StrawberryConfig

from gql_feed.app.live import LiveServer
from gql_feed.config import Settings
from gql_feed.engine.executable import build_schema
from gql_feed.engine.extensions import DocumentChecks, schema_extensions
from gql_feed.engine.persisted import PersistedDocuments
from gql_feed.engine.priority import WritesFirst
from gql_feed.engine.response_cache import InvalidatingPublisher, ResponseCache
from gql_feed.events.hub import EventHub
from gql_feed.logs import shown_url
from gql_feed.observability.setup import Tracing
from gql_feed.runtime import heap
from gql_feed.runtime.shutdown import close_sockets_first_on_sigterm
from gql_feed.runtime.switching import prompt_threads
from gql_feed.schema.context import Services
from gql_feed.services.accounts import AccountService
from gql_feed.services.known_users import KnownUsers
from gql_feed.services.passwords import Cost, Passwords
from gql_feed.services.posts import PostService, Publisher
from gql_feed.services.throttle import Counts, LoginThrottle, SignupThrottle
from gql_feed.services.tickets import (
    LocalSpentTickets,
    RedisSpentTickets,
    SpentTickets,
    StreamTickets,
)
from gql_feed.services.tokens import TokenService
from gql_feed.storage.database import Database, check_up_to_date, migrate
from gql_feed.storage.images import CONTENT_TYPES, ImageStore
from gql_feed.storage.log_version import LogVersion
from gql_feed.storage.orphans import sweep_orphan_images
from gql_feed.transport.http.body_limit import BodySizeLimit
from gql_feed.transport.http.csrf import CsrfGuard
from gql_feed.transport.http.deadlines import BodyDeadline
from gql_feed.transport.http.page_headers import page_headers
from gql_feed.transport.http.view import GraphQLView
from gql_feed.transport.streams.streams import StreamsOrView
from gql_feed.transport.ws.route import LiveRoute

logger = logging.getLogger(__name__)

WEB = Path(__file__).resolve().parents[1] / "web"


def build_services(
    settings: Settings, db: Database, responses: Callable[[EventHub], ResponseCache] | None = None
) -> Services:
    """`responses` makes the response cache for the hub: it becomes the hub's first sink
    (ahead of the live fan-out) and hears of every event this process publishes."""
    tokens = TokenService(
        secret=settings.secret,
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        ttl_seconds=settings.token_ttl_seconds,
    )
    images = ImageStore(
        settings.upload_dir,
        settings.max_upload_bytes,
        settings.max_image_pixels,
        threads=settings.image_threads,
    )
    hub = EventHub(
        db,
        settings.broadcast_url,
        settings.broadcast_channel,
        settings.event_poll_seconds,
        settings.event_log_retention,
    )
    publisher: Publisher = hub
    if responses is not None:
        cache = responses(hub)
        hub.add_sink(cache)
        publisher = InvalidatingPublisher(cache, hub)
    # Throttle counts live in the bus's Redis when it is one: shared by every process.
    counts = Counts.for_bus(settings.broadcast_url, settings.broadcast_channel + ":throttle")
    accounts = AccountService(
        db,
        tokens,
        throttle=LoginThrottle(settings.login_max_failures, settings.login_lockout_seconds, counts),
        signups=SignupThrottle(
            settings.signup_max_per_address, settings.signup_period_seconds, counts
        ),
        passwords=Passwords(
            settings.password_hash_threads,
            settings.password_hash_queue,
            Cost(settings.password_hash_memory_kib, settings.password_hash_passes),
        ),
        known_users=KnownUsers(db, settings.known_user_ttl_seconds),
    )
    spent: SpentTickets = LocalSpentTickets()
    if settings.broadcast_url.startswith(("redis://", "rediss://")):
        spent = RedisSpentTickets(settings.broadcast_url, settings.broadcast_channel + ":ticket:")
    tickets = StreamTickets(settings.secret, settings.jwt_issuer, settings.jwt_audience, spent)
    return Services(
        settings=settings,
        accounts=accounts,
        posts=PostService(
            db,
            images,
            publisher,
            settings.max_per_page,
            settings.max_first,
            settings.max_page_offset,
        ),
        tokens=tokens,
        hub=hub,
        tickets=tickets,
    )


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or Settings()
    # First: whether tracing is on decides the schema's extensions (`schema_extensions`).
    tracing = Tracing.from_environment()
    db = Database.open(settings.database_url)
    # One parser, validation cache and cost for the schema and the HTTP view's batches.
    checks = DocumentChecks.for_settings(settings)
    schema = build_schema(
        schema_extensions(settings, checks),
        StrawberryConfig(batching_config={"max_operations": settings.max_batch_operations}),
    )
    caches: list[ResponseCache] = []

    def response_cache(hub: EventHub) -> ResponseCache:
        version = LogVersion.of(db)
        cache = ResponseCache(settings.response_cache_bytes, version.newest, hub)
        caches.append(cache)
        return cache

    services = build_services(settings, db, response_cache)
    (responses,) = caches
    # One document store for HTTP and WebSocket: a hash registered on one serves both.
    documents = PersistedDocuments.from_settings(settings, schema, checks.parser)
    live = LiveServer(
        schema=schema,
        services=services,
        settings=settings,
        documents=documents,
        parser=checks.parser,
    )
    images = services.posts.images

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        tracing.instrument(sql_engines(db))
        if settings.auto_migrate:
            await migrate(db.engine)
        else:
            await check_up_to_date(db.engine)
        images.ensure_directory()
        await sweep_orphan_images(db, images, settings.orphan_grace_seconds)
        await services.hub.start()
        responses.begin_at(services.hub.last_id)
        await live.start()
        close_sockets_first_on_sigterm(live.close_all)
        logger.info("database: %s", shown_url(settings.database_url))
        logger.info("bus: %s", shown_url(settings.broadcast_url))
        try:
            collector = heap.settled(settings.gc_thresholds) if settings.gc_freeze else None
            with collector or nullcontext(), prompt_threads(settings.switch_interval_seconds):
                yield
        finally:
            await live.stop()
            await documents.close()
            if isinstance(services.tickets.spent, RedisSpentTickets):
                await services.tickets.spent.close()
            await services.hub.stop()
            await db.close()
            images.close()
            services.accounts.passwords.close()
            await services.accounts.throttle.counts.close()
            tracing.close()  # last: the spans of everything above are flushed

    async def upload(request: Request) -> Response:
        name = request.path_params["name"]
        path = images.path_of(name)
        if path is None or not path.is_file():
            return PlainTextResponse("Not found", status_code=404)
        media_type = CONTENT_TYPES[name.rpartition(".")[2]]
        return FileResponse(
            path,
            media_type=media_type,
            headers={
                "Cache-Control": "public, max-age=31536000, immutable",
                "X-Content-Type-Options": "nosniff",
            },
        )

    async def health(_: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def ready(_: Request) -> Response:
        problems = []
        try:
            await services.hub.log_bounds()
        except Exception:
            problems.append("database")
        if not services.hub.bus.connected.is_set():
            problems.append("bus")
        status = 503 if problems else 200
        return JSONResponse(
            {"status": "unavailable" if problems else "ready", "down": problems}, status
        )

    async def metrics(_: Request) -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    index_headers = page_headers(settings)

    async def index(_: Request) -> Response:
        return FileResponse(WEB / "index.html", media_type="text/html", headers=index_headers)

    priority = WritesFirst(settings.reads_per_turn_while_writing)
    view = GraphQLView(
        services,
        documents=documents,
        checks=checks,
        responses=responses,
        priority=priority,
        schema=schema,
        graphql_ide=None if settings.production else "graphiql",
        multipart_uploads_enabled=True,
        subscription_protocols=(),
    )
    middleware = [
        Middleware(BodyDeadline, seconds=settings.request_body_timeout_seconds),
        Middleware(BodySizeLimit, max_bytes=settings.max_request_bytes),
    ]
    if settings.cors_origins:
        # First, so that even a refusal (413) carries the CORS headers a browser needs.
        middleware.insert(
            0,
            Middleware(
                CORSMiddleware,
                allow_origins=settings.cors_origins,
                allow_methods=["GET", "POST", "PUT", "DELETE"],
                allow_headers=[
                    "authorization",
                    "content-type",
                    "apollo-require-preflight",
                    "x-apollo-operation-name",
                    "last-event-id",
                    "x-graphql-event-stream-token",
                ],
            ),
        )
    # Outermost: WebSockets go straight to their endpoint (see `transport.ws.route`).
    middleware.insert(0, Middleware(LiveRoute, path="/graphql", endpoint=live.websockets))
    app = Starlette(
        routes=[
            Route("/", index),
            # SSE and multipart subscriptions stream from the live server; the rest is the view's.
            Route(
                "/graphql",
                StreamsOrView(CsrfGuard(view), live.streams, live.single, checks.parser.parse),
                methods=["GET", "POST", "PUT", "DELETE"],
            ),
            Route("/uploads/{name}", upload),
            Route("/health", health),
            Route("/ready", ready),
            Route("/metrics", metrics),
            Mount("/static", StaticFiles(directory=WEB, check_dir=False), name="static"),
        ],
        middleware=middleware,
        lifespan=lifespan,
    )
    app.state.services = services
    app.state.live = live
    app.state.document_checks = checks
    app.state.schema = schema
    app.state.priority = priority
    return app


def sql_engines(db: Database) -> list[Engine]:
    """Every SQLAlchemy engine the database goes through (on SQLite, its threads' too)."""
    engines = [db.engine.sync_engine, db.write_engine.sync_engine]
    for reader in (db.sqlite_reader, db.sqlite_writer):
        if reader is not None:
            engines.append(reader.engine)
            if reader.here is not None:
                engines.append(reader.here)
    return list({id(engine): engine for engine in engines}.values())


def export_schema() -> str:
    """The SDL as `schema.graphql` holds it (limits don't change the schema's shape)."""
    schema: strawberry.Schema = build_schema([])
    return schema.as_str() + "\n"
