"""Client-server API endpoints, one module per spec section. Each module holds a class that
takes the services it uses and lists its routes; ``app.py`` puts them together."""
