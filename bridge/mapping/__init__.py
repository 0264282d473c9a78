"""How an AWS thing becomes an IoT Hub device, shared by every step and importing none.

Identity and authentication from certificates (`auth`), the twin a thing maps to
(`sections`, `twin`), the application properties a relayed or migrated message carries
(`topics`), and the migration plan document that records all of it (`models`).
"""
