"""The browser client served by the node: static HTML, CSS and JavaScript modules in
``static/`` (no build step), and :mod:`rocketnode.web.serving`, the routes that serve them."""
