"""Who is calling: credentials checked on every gRPC method (the REST shim forwards `Authorization`), the caller's
tenant and scopes made available to the services."""
