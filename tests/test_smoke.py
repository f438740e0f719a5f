def test_webinar_page_renders(client, webinar):
    response = client.get(webinar.url)
    assert response.status_code == 200
    assert webinar.title in response.content.decode()
