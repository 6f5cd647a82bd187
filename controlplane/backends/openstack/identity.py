"""Keystone: domains, projects, groups, users and role assignments on projects.

Lookups use one filtered list call (``?name=…&domain_id=…``) instead of the SDK's ``find_*``,
which first tries the name as an id (a wasted 404 round trip).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

from openstack import resource
from openstack.identity.v3 import domain as sdk_domain

from controlplane.backends.cloud import Domain, Group, Project, RoleAssignment, User
from controlplane.backends.openstack.connection import ConnectionHolder
from controlplane.backends.openstack.errors import raise_for_response, translated
from controlplane.errors import BackendNotFound, PermanentError

if TYPE_CHECKING:
    from openstack.identity.v3._proxy import Proxy as IdentityProxy

log = logging.getLogger(__name__)


class _TaggedDomain(sdk_domain.Domain):
    """Keystone stores tags on domains too (they are projects acting as domains); the SDK's
    Domain resource just does not declare the field."""

    tags = resource.Body("tags", type=list, default=[])


def _domain(obj: Any) -> Domain:
    return Domain(
        id=obj.id,
        name=obj.name,
        description=obj.description or "",
        enabled=bool(obj.is_enabled),
        tags=tuple(sorted(obj.tags or ())),
    )


def _project(obj: Any) -> Project:
    return Project(
        id=obj.id,
        name=obj.name,
        domain_id=obj.domain_id,
        description=obj.description or "",
        enabled=bool(obj.is_enabled),
        tags=tuple(sorted(obj.tags or ())),
    )


def _group(obj: Any) -> Group:
    return Group(
        id=obj.id, name=obj.name, domain_id=obj.domain_id, description=obj.description or ""
    )


def _user(obj: Any) -> User:
    return User(id=obj.id, name=obj.name, domain_id=obj.domain_id, enabled=bool(obj.is_enabled))


def _changes(**fields: Any) -> dict[str, Any]:
    return {k: (list(v) if k == "tags" else v) for k, v in fields.items() if v is not None}


def _one_actor(group_id: str | None, user_id: str | None) -> tuple[str, str]:
    if group_id is not None and user_id is None:
        return "groups", group_id
    if user_id is not None and group_id is None:
        return "users", user_id
    raise PermanentError(
        "a role assignment names exactly one of group_id or user_id", backend="openstack"
    )


class IdentityMixin(ConnectionHolder):
    def _identity(self) -> IdentityProxy:
        # clouds.yaml may ask for identity v2 in theory; Keystone has served only v3 for years.
        return cast("IdentityProxy", self._conn().identity)

    # ------------------------------------------------------------------ domains
    def find_domain(self, name: str) -> Domain | None:
        with translated(f"find domain {name!r}"):
            found = list(_TaggedDomain.list(self._identity(), name=name))
        return _domain(found[0]) if found else None

    def list_domains(self, *, tag: str | None = None) -> list[Domain]:
        with translated("list domains"):
            domains = [_domain(d) for d in _TaggedDomain.list(self._identity())]
        return [d for d in domains if tag is None or tag in d.tags]

    def ensure_domain(
        self, name: str, *, description: str = "", tags: Sequence[str] = ()
    ) -> Domain:
        existing = self.find_domain(name)
        if existing is not None:
            return existing
        with translated(f"create domain {name!r}"):
            created = _TaggedDomain.new(
                name=name, description=description, tags=list(tags), is_enabled=True
            ).create(self._identity())
        log.info("created domain %s (%s)", name, created.id)
        return _domain(created)

    def update_domain(
        self,
        domain_id: str,
        *,
        description: str | None = None,
        enabled: bool | None = None,
        tags: Sequence[str] | None = None,
    ) -> Domain:
        changes = _changes(description=description, is_enabled=enabled, tags=tags)
        with translated(f"update domain {domain_id}"):
            identity = self._identity()
            if not changes:
                return _domain(_TaggedDomain.existing(id=domain_id).fetch(identity))
            domain = _TaggedDomain.existing(id=domain_id)
            for key, value in changes.items():
                setattr(domain, key, value)
            return _domain(domain.commit(identity))

    def delete_domain(self, domain_id: str, *, missing_ok: bool = True) -> None:
        # Keystone refuses to delete an enabled domain; deleting one removes its projects,
        # users and groups (but nothing in Neutron/Nova/Cinder: decommission those first).
        try:
            self.update_domain(domain_id, enabled=False)
            with translated(f"delete domain {domain_id}"):
                self._identity().delete_domain(domain_id, ignore_missing=False)
        except BackendNotFound:
            if not missing_ok:
                raise
            return
        log.info("deleted domain %s", domain_id)

    # ------------------------------------------------------------------ projects
    def find_project(self, name: str, *, domain_id: str) -> Project | None:
        with translated(f"find project {name!r}"):
            found = list(self._identity().projects(name=name, domain_id=domain_id))
        return _project(found[0]) if found else None

    def get_project(self, project_id: str) -> Project:
        with translated(f"get project {project_id}"):
            return _project(self._identity().get_project(project_id))

    def list_projects(self, *, domain_id: str, tag: str | None = None) -> list[Project]:
        query: dict[str, Any] = {"domain_id": domain_id}
        if tag is not None:
            query["tags"] = tag
        with translated(f"list projects of domain {domain_id}"):
            return [_project(p) for p in self._identity().projects(**query)]

    def ensure_project(
        self,
        name: str,
        *,
        domain_id: str,
        description: str = "",
        tags: Sequence[str] = (),
        enabled: bool = True,
    ) -> Project:
        existing = self.find_project(name, domain_id=domain_id)
        if existing is not None:
            return existing
        with translated(f"create project {name!r}"):
            created = self._identity().create_project(
                name=name,
                domain_id=domain_id,
                description=description,
                tags=list(tags),
                is_enabled=enabled,
            )
        log.info("created project %s (%s) in domain %s", name, created.id, domain_id)
        return _project(created)

    def update_project(
        self,
        project_id: str,
        *,
        description: str | None = None,
        enabled: bool | None = None,
        tags: Sequence[str] | None = None,
    ) -> Project:
        changes = _changes(description=description, is_enabled=enabled, tags=tags)
        if not changes:
            return self.get_project(project_id)
        with translated(f"update project {project_id}"):
            return _project(self._identity().update_project(project_id, **changes))

    def delete_project(self, project_id: str, *, missing_ok: bool = True) -> None:
        with translated(f"delete project {project_id}"):
            self._identity().delete_project(project_id, ignore_missing=missing_ok)

    # ------------------------------------------------------------------ groups
    def find_group(self, name: str, *, domain_id: str) -> Group | None:
        with translated(f"find group {name!r}"):
            found = list(self._identity().groups(name=name, domain_id=domain_id))
        return _group(found[0]) if found else None

    def ensure_group(self, name: str, *, domain_id: str, description: str = "") -> Group:
        existing = self.find_group(name, domain_id=domain_id)
        if existing is not None:
            return existing
        with translated(f"create group {name!r}"):
            created = self._identity().create_group(
                name=name, domain_id=domain_id, description=description
            )
        log.info("created group %s (%s) in domain %s", name, created.id, domain_id)
        return _group(created)

    def delete_group(self, group_id: str, *, missing_ok: bool = True) -> None:
        with translated(f"delete group {group_id}"):
            self._identity().delete_group(group_id, ignore_missing=missing_ok)

    def add_group_member(self, group_id: str, user_id: str) -> None:
        with translated(f"add user {user_id} to group {group_id}"):
            self._identity().add_user_to_group(user_id, group_id)

    def remove_group_member(self, group_id: str, user_id: str) -> None:
        try:
            with translated(f"remove user {user_id} from group {group_id}"):
                self._identity().remove_user_from_group(user_id, group_id)
        except BackendNotFound:
            return  # not a member (any more): done

    def list_group_members(self, group_id: str) -> list[User]:
        with translated(f"list members of group {group_id}"):
            return [_user(u) for u in self._identity().group_users(group_id)]

    # ------------------------------------------------------------------ users
    def find_user(self, name: str, *, domain_id: str) -> User | None:
        with translated(f"find user {name!r}"):
            found = list(self._identity().users(name=name, domain_id=domain_id))
        return _user(found[0]) if found else None

    def ensure_user(
        self, name: str, *, domain_id: str, password: str, default_project_id: str | None = None
    ) -> User:
        existing = self.find_user(name, domain_id=domain_id)
        if existing is not None:
            return existing
        body: dict[str, Any] = {"name": name, "domain_id": domain_id, "password": password}
        if default_project_id:
            body["default_project_id"] = default_project_id
        action = f"create user {name!r}"
        with translated(action):
            # Raw POST with log=False: keystoneauth's debug log prints request bodies verbatim,
            # and this one carries the password.
            response = self._identity().post("/users", json={"user": body}, log=False)
        raise_for_response(response, action=action)
        created = response.json()["user"]
        log.info("created user %s (%s) in domain %s", name, created["id"], domain_id)
        return User(
            id=created["id"],
            name=created["name"],
            domain_id=created["domain_id"],
            enabled=bool(created.get("enabled", True)),
        )

    def delete_user(self, user_id: str, *, missing_ok: bool = True) -> None:
        with translated(f"delete user {user_id}"):
            self._identity().delete_user(user_id, ignore_missing=missing_ok)

    # ------------------------------------------------------------------ role assignments
    def _role_id(self, role_name: str) -> str:
        cache = self._role_ids
        if role_name not in cache:
            with translated(f"find role {role_name!r}"):
                roles = list(self._identity().roles(name=role_name))
            global_roles = [r for r in roles if not r.domain_id]
            if not global_roles:
                raise BackendNotFound(f"role {role_name!r} does not exist", backend="openstack",
                                      hint="roles admin, member and reader come with keystone")
            cache[role_name] = global_roles[0].id
        return cache[role_name]

    def assign_role(
        self,
        project_id: str,
        role_name: str,
        *,
        group_id: str | None = None,
        user_id: str | None = None,
    ) -> None:
        kind, actor = _one_actor(group_id, user_id)
        role_id = self._role_id(role_name)
        action = f"grant role {role_name} on project {project_id} to {kind[:-1]} {actor}"
        with translated(action):
            # The SDK's assign_project_role_to_* return False instead of raising on 403/404.
            response = self._identity().put(
                f"/projects/{project_id}/{kind}/{actor}/roles/{role_id}"
            )
        raise_for_response(response, action=action)

    def unassign_role(
        self,
        project_id: str,
        role_name: str,
        *,
        group_id: str | None = None,
        user_id: str | None = None,
    ) -> None:
        kind, actor = _one_actor(group_id, user_id)
        role_id = self._role_id(role_name)
        action = f"revoke role {role_name} on project {project_id} from {kind[:-1]} {actor}"
        with translated(action):
            response = self._identity().delete(
                f"/projects/{project_id}/{kind}/{actor}/roles/{role_id}"
            )
        if response.status_code == 404:
            return  # no such grant (any more): done
        raise_for_response(response, action=action)

    def list_role_assignments(self, project_id: str) -> list[RoleAssignment]:
        with translated(f"list role assignments on project {project_id}"):
            found = list(
                self._identity().role_assignments(
                    scope_project_id=project_id, include_names=True
                )
            )
        return [
            RoleAssignment(
                role_id=ra.role["id"],
                role_name=ra.role.get("name", ""),
                project_id=project_id,
                user_id=(ra.user or {}).get("id"),
                group_id=(ra.group or {}).get("id"),
            )
            for ra in found
        ]
