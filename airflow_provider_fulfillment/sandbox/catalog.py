"""Fixed vocabularies for the generated world: names, places, products, carriers.

Kept apart from the generators so the worlds read as logic, and small enough to live in memory for
any world size (records pick from these lists by per-record RNG draws).
"""

from __future__ import annotations

import random

FIRST_NAMES = (
    "Jane",
    "John",
    "Maria",
    "Wei",
    "Aisha",
    "Carlos",
    "Olivia",
    "Liam",
    "Noah",
    "Emma",
    "Ava",
    "Mia",
    "Lucas",
    "Sofia",
    "Ethan",
    "Priya",
    "Kenji",
    "Fatima",
    "Omar",
    "Chloe",
    "Diego",
    "Hannah",
    "Ivan",
    "Grace",
    "Mateo",
    "Zoe",
    "Amir",
    "Lena",
    "Tomás",
    "Yuki",
)
LAST_NAMES = (
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Garcia",
    "Miller",
    "Davis",
    "Rodriguez",
    "Martinez",
    "Hernandez",
    "Lopez",
    "Wilson",
    "Anderson",
    "Thomas",
    "Taylor",
    "Moore",
    "Jackson",
    "Martin",
    "Lee",
    "Perez",
    "Thompson",
    "White",
    "Harris",
    "Clark",
    "Lewis",
    "Robinson",
    "Walker",
    "Young",
    "Allen",
    "King",
    "Wright",
    "Scott",
    "Nguyen",
    "Hill",
    "Flores",
    "Green",
    "Adams",
    "Nelson",
    "Baker",
    "Hall",
)
BUSINESS_WORDS = (
    "Home Appliances",
    "Outfitters",
    "Hardware",
    "Boutique",
    "Supply Co.",
    "Trading",
    "Goods",
    "Wholesale",
    "Market",
    "Pharmacy",
    "Bike Shop",
    "Books",
    "Electronics",
    "Garden Center",
    "Pet Supply",
    "Kitchenware",
    "Sporting Goods",
    "Toys",
    "Apparel",
    "Furniture",
)
STREETS = (
    "Main St",
    "Oak Ave",
    "Maple Dr",
    "Cedar Ln",
    "Pine St",
    "Elm St",
    "Washington Blvd",
    "Lake Rd",
    "Hill St",
    "Park Ave",
    "Sunset Blvd",
    "Milmont Dr",
    "Broadway",
    "Market St",
    "Mission St",
)
# (city, region, postal prefix, country)
CITIES = (
    ("Fremont", "CA", "945", "US"),
    ("Tulsa", "OK", "741", "US"),
    ("Austin", "TX", "787", "US"),
    ("Brooklyn", "NY", "112", "US"),
    ("Seattle", "WA", "981", "US"),
    ("Denver", "CO", "802", "US"),
    ("Chicago", "IL", "606", "US"),
    ("Miami", "FL", "331", "US"),
    ("Portland", "OR", "972", "US"),
    ("Atlanta", "GA", "303", "US"),
    ("Boston", "MA", "021", "US"),
    ("Phoenix", "AZ", "850", "US"),
    ("Reno", "NV", "895", "US"),
    ("Columbus", "OH", "432", "US"),
    ("Nashville", "TN", "372", "US"),
    ("Toronto", "ON", "M5V", "CA"),
    ("Vancouver", "BC", "V6B", "CA"),
    ("London", "ENG", "SW1", "GB"),
)

STORES = (
    (1234, "Jane's Goods", "shopify"),
    (1345, "Smith Appliances Shopify", "shopify"),
    (1456, "Acme Outdoor Amazon", "amazon"),
    (1567, "Blue Fern Home", "woocommerce"),
    (1678, "Northwind Traders", "bigcommerce"),
    (1789, "Copper Kettle Co.", "shopify"),
    (1890, "Urban Threads", "magento"),
    (1901, "Peak Performance Gear", "amazon"),
)
STORE_WEIGHTS = (56, 44, 40, 32, 28, 24, 20, 12)  # sums to 256

WAREHOUSES = (
    (6426, "Tulsa Warehouse", "TUL", "Tulsa", "OK"),
    (3229, "Reno Fulfillment Center", "RNO", "Reno", "NV"),
    (4417, "Allentown DC", "ABE", "Allentown", "PA"),
    (5108, "Fremont Warehouse", "FRE", "Fremont", "CA"),
)
WAREHOUSE_WEIGHTS = (100, 76, 50, 30)

# (carrier, service level, external description, warehouse code, tracking prefix, weight)
CARRIERS = (
    ("UPS", "Ground", "UPS Ground", "UPSG", "1Z8W1F03", 80),
    ("UPS", "2nd Day Air", "UPS 2nd Day Air", "UPS2", "1Z8W1F02", 20),
    ("USPS", "Priority", "USPS Priority Mail", "USPSP", "94001118992", 56),
    ("USPS", "First Class", "USPS First Class", "USPSF", "94001118991", 40),
    ("FedEx", "Home Delivery", "FedEx Home Delivery", "FXHD", "77", 40),
    ("DHL", "Express", "DHL Express Worldwide", "DHLX", "JD0146", 20),
)

ADJECTIVES = (
    "Red",
    "Blue",
    "Green",
    "Classic",
    "Deluxe",
    "Organic",
    "Compact",
    "Wireless",
    "Vintage",
    "Premium",
    "Travel",
    "Eco",
    "Pro",
    "Mini",
    "Heavy-Duty",
    "Soft",
    "Stainless",
    "Bamboo",
    "Smart",
    "Waterproof",
)
NOUNS = (
    ("Shirt", "apparel"),
    ("Mug", "kitchen"),
    ("Backpack", "outdoor"),
    ("Lamp", "home"),
    ("Headphones", "electronics"),
    ("Blender", "appliances"),
    ("Notebook", "stationery"),
    ("Water Bottle", "outdoor"),
    ("Candle", "home"),
    ("Sneakers", "apparel"),
    ("Toaster", "appliances"),
    ("Yoga Mat", "fitness"),
    ("Charger", "electronics"),
    ("Skillet", "kitchen"),
    ("Hoodie", "apparel"),
    ("Dog Bed", "pets"),
    ("Tent", "outdoor"),
    ("Speaker", "electronics"),
    ("Planter", "garden"),
    ("Socks", "apparel"),
)
COLORS = ("Red", "Blue", "Black", "White", "Green", "Grey", "Navy", None)
SIZES = ("S", "M", "L", "XL", None, None)
VENDORS = ("Jane's Apparel", "Acme Supply", "Globex Manufacturing", "Initech Imports", "Umbrella Goods")


def products(seed: int, count: int = 160) -> list[dict]:
    """A seeded product catalog; order lines pick from it, so SKUs repeat realistically."""
    rng = random.Random(seed * 7919 + 17)
    out = []
    seen: set[str] = set()
    while len(out) < count:
        adj = rng.choice(ADJECTIVES)
        noun, ptype = rng.choice(NOUNS)
        name = f"{adj} {noun}"
        if name in seen:
            continue
        seen.add(name)
        code = "".join(w[:3] for w in name.upper().replace("-", " ").split())[:8]
        price = round(rng.uniform(4, 180), 2)
        out.append(
            {
                "name": name,
                "sku": f"{code}-{100 + len(out)}",
                "upc": f"{rng.randrange(10**11, 10**12)}",
                "unit_price": price,
                "unit_cost": round(price * rng.uniform(0.35, 0.7), 2),
                "weight": round(rng.uniform(0.1, 12), 1),
                "external_product_id": str(4508015558692 + len(out) * 131),
                "vendor_id": rng.choice(VENDORS),
                "vendor_part_number": f"VP-{rng.randrange(10000, 99999)}",
                "color_description": rng.choice(COLORS),
                "size_description": rng.choice(SIZES) if ptype == "apparel" else None,
                "product_type": ptype,
            }
        )
    return out


# Stream countries (nested in every address), a small fixed table in the documented shape.
COUNTRIES = {
    "ZA": (200, "0000", "ZAF", "South Africa", "Export Number", "VAT Number", 150, 500.0, 0.15),
    "US": (100, None, "USA", "United States", "EIN", "Tax ID", 101, 800.0, 0.08),
    "GB": (44, None, "GBR", "United Kingdom", "EORI", "VAT Number", 144, 135.0, 0.2),
    "DE": (49, None, "DEU", "Germany", "EORI", "USt-IdNr.", 149, 150.0, 0.19),
    "AU": (61, None, "AUS", "Australia", "ABN", "ABN", 161, 1000.0, 0.1),
    "KE": (254, None, "KEN", "Kenya", "PIN", "PIN", 254, 50.0, 0.16),
}
# (city, province, postal code, country, lat, lon, time zone)
STREAM_PLACES = (
    ("Johannesburg", "Gauteng", "2000", "ZA", -26.2041, 28.0473, "Africa/Johannesburg"),
    ("Cape Town", "Western Cape", "8001", "ZA", -33.9249, 18.4241, "Africa/Johannesburg"),
    ("Durban", "KwaZulu-Natal", "4001", "ZA", -29.8587, 31.0218, "Africa/Johannesburg"),
    ("New York", "New York", "10001", "US", 40.7128, -74.006, "America/New_York"),
    ("Los Angeles", "California", "90210", "US", 34.0522, -118.2437, "America/Los_Angeles"),
    ("London", "England", "SW1A 1AA", "GB", 51.5072, -0.1276, "Europe/London"),
    ("Berlin", "Berlin", "10115", "DE", 52.52, 13.405, "Europe/Berlin"),
    ("Sydney", "New South Wales", "2000", "AU", -33.8688, 151.2093, "Australia/Sydney"),
    ("Nairobi", "Nairobi", "00100", "KE", -1.2921, 36.8219, "Africa/Nairobi"),
)
