"""GraphQL over HTTP: JSON over POST and GET, multipart uploads, GraphiQL and the page."""
