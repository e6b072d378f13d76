"""The service catalogue: 5 categories and 21 service types (服务清单), with qualifications."""
