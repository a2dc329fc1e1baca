# Kaapana's registration workflow (dag_register_dicoms.py), cut to its fan-in:
# two downloads feed register_images, and download_moving_images also feeds a
# later task. Only the two Kaapana imports are changed (pcnode.airflow,
# pcnode.kaapana); the images come from tests/airflow/conftest.py.
from airflow.models import DAG
from kaapana.blueprints.kaapana_global_variables import (
    DEFAULT_REGISTRY,
    KAAPANA_BUILD_VERSION,
)

from pcnode.airflow import IOMapping, KaapanaTaskOperator
from pcnode.kaapana import pc_models

args = {
    "ui_visible": True,
    "owner": "kaapana",
}


with DAG("pcnode_register", default_args=args) as dag:
    download_fixed_image = KaapanaTaskOperator(
        task_id="download_fixed_image",
        image=f"{DEFAULT_REGISTRY}/get-input-task:{KAAPANA_BUILD_VERSION}",
        taskTemplate="dicom-download",
        env=[pc_models.BaseEnv(name="SERIES", value="fixed")],
    )

    download_moving_images = KaapanaTaskOperator(
        task_id="download_moving_images",
        image=f"{DEFAULT_REGISTRY}/get-input-task:{KAAPANA_BUILD_VERSION}",
        taskTemplate="dicom-download",
        env=[pc_models.BaseEnv(name="SERIES", value="moving")],
    )

    register_images = KaapanaTaskOperator(
        task_id="register_images",
        image=f"{DEFAULT_REGISTRY}/mitk-tools:{KAAPANA_BUILD_VERSION}",
        taskTemplate="register",
        env=[],
        iochannel_maps=[
            IOMapping(
                upstream_operator=download_fixed_image,
                upstream_output_channel="downloads",
                input_channel="fixed",
            ),
            IOMapping(
                upstream_operator=download_moving_images,
                upstream_output_channel="downloads",
                input_channel="moving",
            ),
        ],
    )

    convert_registered_nrrd_to_dicom = KaapanaTaskOperator(
        task_id="convert_registered_nrrd_to_dicom",
        image=f"{DEFAULT_REGISTRY}/nrrd-to-dicom:{KAAPANA_BUILD_VERSION}",
        taskTemplate="nrrd-to-dicom",
        env=[],
        iochannel_maps=[
            IOMapping(
                upstream_operator=register_images,
                upstream_output_channel="registered",
                input_channel="nrrd",
            ),
            IOMapping(
                upstream_operator=download_moving_images,
                upstream_output_channel="downloads",
                input_channel="reference",
            ),
        ],
        resources=pc_models.Resources(limits={"memory": "64Mi"}, requests={"memory": "16Mi", "cpu": "100m"}),
        labels={"network-access-ctp": "true"},
    )


download_fixed_image >> register_images

download_moving_images >> register_images

register_images >> convert_registered_nrrd_to_dicom
