"""Version 1 of the REST API: the routes, bodies and responses of the product documentation."""
