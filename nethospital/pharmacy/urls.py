from django.urls import path

from nethospital.pharmacy import views

app_name = "pharmacy"
urlpatterns = [
    # The patient's side: order an approved prescription, pay, cancel, follow the delivery.
    path("pharmacy/orders/", views.my_orders, name="my_orders"),
    path("pharmacy/order/prescription/<int:prescription_id>/", views.new_order, name="new_order"),
    path("pharmacy/order/otc/", views.new_otc_order, name="new_otc_order"),
    path("pharmacy/orders/<int:order_id>/", views.order, name="order"),
    path("pharmacy/orders/<int:order_id>/pay/", views.pay, name="pay"),
    path("pharmacy/orders/<int:order_id>/cancel/", views.cancel, name="cancel"),
    path("pharmacy/orders/<int:order_id>/new-code/", views.new_code, name="new_code"),
    # The pharmacy: queue, stock and prices, receiving, dispensing.
    path("pharmacy/", views.pharmacy_home, name="home"),
    path("pharmacy/<int:pharmacy_id>/queue/", views.queue, name="queue"),
    path("pharmacy/<int:pharmacy_id>/stock/", views.stock_page, name="stock"),
    path("pharmacy/<int:pharmacy_id>/stock/price/", views.set_price, name="set_price"),
    path("pharmacy/<int:pharmacy_id>/receive/", views.receive, name="receive"),
    path("pharmacy/orders/<int:order_id>/dispense/", views.dispense, name="dispense"),
    path("pharmacy/orders/<int:order_id>/dispense/scan/", views.scan, name="scan"),
    path("pharmacy/orders/<int:order_id>/dispense/release/<int:scan_id>/", views.release, name="release"),
    path("pharmacy/orders/<int:order_id>/dispense/complete/", views.complete, name="complete"),
    # The courier.
    path("pharmacy/courier/", views.courier, name="courier"),
    path("pharmacy/orders/<int:order_id>/handover/", views.handover, name="handover"),
    path("pharmacy/orders/<int:order_id>/deliver/", views.deliver, name="deliver"),
    # The village service station.
    path("pharmacy/station/", views.station, name="station"),
    path("pharmacy/orders/<int:order_id>/station-receive/", views.station_receive, name="station_receive"),
    path("pharmacy/orders/<int:order_id>/pickup/", views.pickup, name="pickup"),
]
