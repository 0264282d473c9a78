from pathlib import Path

from azure.storage.blob.aio import BlobServiceClient

from bridge_sim.azurite import Azurite


async def test_blob_round_trip_through_the_azure_sdk(tmp_path: Path) -> None:
    async with (
        Azurite(workdir=tmp_path / "azurite") as azurite,
        BlobServiceClient.from_connection_string(azurite.connection_string) as service,
    ):
        container = service.get_container_client("imports")
        await container.create_container()
        await container.upload_blob("devices.txt", b'{"id":"d1"}\n')
        blob = await container.download_blob("devices.txt")
        assert await blob.readall() == b'{"id":"d1"}\n'
        names = [b.name async for b in container.list_blobs()]
        assert names == ["devices.txt"]
