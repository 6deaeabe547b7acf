"""Redis: the connection (embedded server or a URL), the key schema, stored records and the catalog."""
