"""The Databricks serving-endpoints management API of the workspace gateway, backed by ServingEndpoint resources
(docs/management-api.md): :mod:`.routes` (HTTP), :mod:`.access` (RBAC by SubjectAccessReview), :mod:`.resources`
(the API server), :mod:`.bodies` (Databricks bodies <-> objects, plaintext credentials into an owned Secret),
:mod:`.views` (objects in Databricks' read shape)."""

from .routes import Management, ManagementSettings, management_routes

__all__ = ["Management", "ManagementSettings", "management_routes"]
