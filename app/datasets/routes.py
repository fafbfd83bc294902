from __future__ import annotations

from app.datasets import service
from app.datasets.schemas import DatasetRead
from app.upload_routes import UploadResource, upload_router

router = upload_router(
    UploadResource(
        noun="dataset",
        read=DatasetRead,
        summary="Upload a dataset: .npz/.safetensors tensors or JSONL text (multipart field 'file')",
        description=(
            "Cheap checks run here (tensor headers: numeric dtypes only, each declared shape must "
            "match the bytes it holds, row and array caps; JSONL: the first row): 422, nothing "
            "kept. The stored upload is then `pending` until a worker has inspected it: `ready` "
            "with the inspection, or `rejected` with `rejection_reason`. Jobs need a ready dataset "
            "(409 with Retry-After while it is inspected, 422 once rejected)."
        ),
        upload=service.upload_dataset,
        list_page=service.list_datasets,
        get=service.get_dataset,
        delete=service.delete_dataset,
    )
)
