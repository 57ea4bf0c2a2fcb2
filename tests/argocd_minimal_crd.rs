//! The project's own minimal Application CRD behaves like Argo CD's for what Baton
//! reads, so a fresh clone (without the official CRD) tests the same thing.

#[tokio::test]
async fn minimal_application_crd_round_trips_argocd_status() {
    let cp = baton_testkit::ControlPlane::start()
        .await
        .expect("control plane starts");
    baton_integration::application_status_round_trip(
        &cp,
        &baton_testkit::minimal_application_crd(),
    )
    .await;
}
