"""Who is calling: the FastAPI dependencies that authenticate principals, and what they hold
(grants, agreements) for the clearance decision. Below the domains: it imports none of them."""
