use ticketing::http::Endpoint;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    ticketing_functions::serve(Endpoint::SetRole).await
}
