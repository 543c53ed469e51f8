from __future__ import annotations

from app.dataloaders.base import ByIdLoader, ByParentLoader
from app.db.models import Contact, Customer, Site


class CustomerByIdLoader(ByIdLoader[Customer]):
    model = Customer


class ContactByIdLoader(ByIdLoader[Contact]):
    model = Contact


class SiteByIdLoader(ByIdLoader[Site]):
    model = Site


class ContactsByCustomerIdLoader(ByParentLoader[Contact]):
    model = Contact
    parent = "customer_id"
    order_by = "name"


class ContactsBySiteIdLoader(ByParentLoader[Contact]):
    model = Contact
    parent = "site_id"
    order_by = "name"


class SitesByCustomerIdLoader(ByParentLoader[Site]):
    model = Site
    parent = "customer_id"
    order_by = "name"
