"""The composition root: builds the services, mounts the routes, runs the lifespan."""

from gql_feed.app.application import build_services, create_app, export_schema

__all__ = ["build_services", "create_app", "export_schema"]
