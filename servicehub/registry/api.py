"""Registry endpoints: areas, stations, organisations, contracts, workers, recipients and needs."""

from flask_smorest import Blueprint

from servicehub.auth.permissions import Permission
from servicehub.registry import schemas as s
from servicehub.registry import services
from servicehub.resources import Resource, register_resource

blp = Blueprint(
    "registry",
    __name__,
    url_prefix="/api/v1",
    description="The registry: areas, stations, organisations, contracts, workers, recipients and their needs. "
    "Lists are scoped to the caller; ID numbers are masked unless the role needs them.",
)

RESOURCES = [
    Resource("area", "/areas", s.AreaSchema, s.AreaCreateSchema, s.AreaUpdateSchema, s.AreaListArgs,
             Permission.REGISTRY_READ, Permission.REGISTRY_MANAGE,
             services.list_areas, services.get_area, services.create_area, services.update_area),
    Resource("station", "/stations", s.StationSchema, s.StationCreateSchema, s.StationUpdateSchema, s.StationListArgs,
             Permission.REGISTRY_READ, Permission.REGISTRY_MANAGE,
             services.list_stations, services.get_station, services.create_station, services.update_station),
    Resource("organisation", "/organisations", s.OrganisationSchema, s.OrganisationCreateSchema,
             s.OrganisationUpdateSchema, s.OrganisationListArgs, Permission.REGISTRY_READ, Permission.REGISTRY_MANAGE,
             services.list_organisations, services.get_organisation, services.create_organisation,
             services.update_organisation),
    Resource("contract", "/contracts", s.ContractSchema, s.ContractCreateSchema, s.ContractUpdateSchema,
             s.ContractListArgs, Permission.REGISTRY_READ, Permission.REGISTRY_MANAGE,
             services.list_contracts, services.get_contract, services.create_contract, services.update_contract),
    Resource("worker", "/workers", s.WorkerSchema, s.WorkerCreateSchema, s.WorkerUpdateSchema, s.WorkerListArgs,
             Permission.REGISTRY_READ, Permission.WORKERS_MANAGE,
             services.list_workers, services.get_worker, services.create_worker, services.update_worker),
    Resource("recipient", "/recipients", s.RecipientSchema, s.RecipientCreateSchema, s.RecipientUpdateSchema,
             s.RecipientListArgs, Permission.RECIPIENTS_READ, Permission.RECIPIENTS_MANAGE,
             services.list_recipients, services.get_recipient, services.create_recipient, services.update_recipient),
    Resource("need", "/needs", s.NeedSchema, s.NeedCreateSchema, s.NeedUpdateSchema, s.NeedListArgs,
             Permission.RECIPIENTS_READ, Permission.RECIPIENTS_MANAGE,
             services.list_needs, services.get_need, services.create_need, services.update_need),
]

for resource in RESOURCES:
    register_resource(blp, resource)
