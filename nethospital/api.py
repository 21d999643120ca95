from ninja import NinjaAPI

api = NinjaAPI(title="Net Hospital API", version="1", docs_url="/docs", urls_namespace="api")
