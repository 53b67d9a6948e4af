"""A four-document knowledge base for the retriever tests: small enough to check by hand."""
DOCS = [
    {"id": "returns-policy", "title": "Returns policy",
     "body": "Unused gear can be returned within 45 days of delivery.\n\nRefunds go back to the original card."},
    {"id": "shipping", "title": "Shipping",
     "body": "Standard shipping takes 3 to 5 working days.\n\nOrders over $75 ship free."},
    {"id": "tent-care", "title": "Tent care",
     "body": "Dry your tent fully before storing it to prevent mildew.\n\nNever machine-wash a tent."},
    {"id": "store-hours", "title": "Store hours", "body": "The Cairnfield store opens at 9am, Monday to Saturday."},
]
QUESTIONS = ["How many days do I have to send back unused gear?", "Is delivery free?",
             "How should I store my tent?", "When does the shop open?"]
